#!/usr/bin/env bash
# The whole test suite, lab tests included (they need root and build real namespaces).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m 'not lab'` for the fast suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m pytest "$@"
