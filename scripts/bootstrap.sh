#!/usr/bin/env bash
# Installs what Didehban needs on a Debian 12 machine, idempotently.
#   scripts/bootstrap.sh run    system packages to run the hotline (PBX root tools, speech tools)
#   scripts/bootstrap.sh test   ... plus what the test suite needs (sipp, PostgreSQL)
# Then makes the virtual environment .venv with the project installed in it.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
PYTHON=${PYTHON:-python3}

run_packages=(python3 python3-venv python3-dev gcc ca-certificates mmdebstrap sox espeak-ng)
# chromium and fonts-noto-core: the console's browser tests (Playwright drives Debian's Chromium).
test_packages=(sip-tester postgresql chromium fonts-noto-core)

wanted=("${run_packages[@]}")
[ "$mode" = test ] && wanted+=("${test_packages[@]}")

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.didehban-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
# Byte-compiled once here: Asterisk starts the process-per-call AGI script as a user that may not
# write __pycache__, and compiling the IVR's modules on every call would cost more than the call.
.venv/bin/python -m compileall -q agi_scripts ivr domain prompts >/dev/null

# The console's htmx and Vazirmatn font are committed; this fetches them from npm only if missing.
bash scripts/vendor-assets.sh

# Secrets for this machine, made once (never committed: .env is ignored by git).
if [ ! -f .env ]; then
  umask 077
  .venv/bin/didehban keys > .env
  echo "bootstrap: wrote new secrets to .env"
fi
# Settings added since this machine's .env was written: new keys, and this single machine's IVR node
# prefix (every node needs its own; the FastAGI server refuses to start without one).
for line in $(.venv/bin/didehban keys) DIDEHBAN_NODE_PREFIX=21; do
  if ! grep -q "^${line%%=*}=" .env; then
    (umask 077 && echo "$line" >> .env)
    echo "bootstrap: added ${line%%=*} to .env"
  fi
done
