#!/usr/bin/env bash
# The whole suite in two pytest processes at once (CI has 2 cores): the real-PBX calls, which mostly
# wait on the phone, beside everything else. The calls share one Asterisk root and its ports, so they
# stay in one process, one after another. With arguments, one pytest runs just those.
#   scripts/run-tests.sh             the whole suite
#   scripts/run-tests.sh tests/ivr   one part
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider -q -ra)
if (($#)); then
  exec "${PYTEST[@]}" "$@"
fi
mkdir -p var
pbx_log=var/test-pbx.log
"${PYTEST[@]}" --durations=5 tests/pbx >"$pbx_log" 2>&1 &
pbx=$!
"${PYTEST[@]}" --durations=10 --ignore=tests/pbx
rest=$?
wait "$pbx"
pbx_rc=$?
echo "--- the real-PBX calls (tests/pbx, run beside the rest; also in $pbx_log) ---"
cat "$pbx_log"
echo "the rest: exit $rest; tests/pbx: exit $pbx_rc"
((rest == 0 && pbx_rc == 0))
