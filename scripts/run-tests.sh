#!/usr/bin/env bash
# Install everything (idempotent), then run the whole check suite: ruff, the import-layer contracts
# and pytest (Qt offscreen). Extra arguments go to pytest. Fails if pytest collected no test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/install.sh"
cd "$here"
export QT_QPA_PLATFORM=offscreen
echo "[run-tests] ruff"; .venv/bin/ruff check .
echo "[run-tests] import layers"; .venv/bin/lint-imports
echo "[run-tests] pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "[run-tests] pytest collected no tests: failing"; exit 1; fi
exit "$rc"
