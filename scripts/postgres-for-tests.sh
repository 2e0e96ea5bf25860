#!/usr/bin/env bash
# Starts Debian's PostgreSQL cluster and prints a URL for the tests (a role that may create
# databases; each test run creates its own database). Needs root. Idempotent.
set -euo pipefail
cd /  # psql as postgres cannot enter root-only folders
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
if [ -z "${version:-}" ]; then
  echo "postgres: no cluster found (apt-get install postgresql)" >&2
  exit 1
fi
pg_ctlcluster "$version" "$cluster" start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.5
done
password=didehban_test_pw
su postgres -c "psql -qAt" >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'didehban_test') THEN
    CREATE ROLE didehban_test LOGIN CREATEDB PASSWORD '$password';
  END IF;
END \$\$;
SQL
port=$(su postgres -c "psql -qAtc 'show port'")
echo "postgresql+psycopg://didehban_test:$password@127.0.0.1:$port/postgres"
