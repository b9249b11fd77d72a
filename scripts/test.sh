#!/usr/bin/env bash
# The test command: set-up, the code checks (scripts/lint.sh), the documentation site (scripts/docs.sh), then the whole suite, on TSM_TEST_WORKERS processes (default 2, the CI machine's
# cores; each test file stays in one process, so its module fixtures are built once; the files in
# tests/conftest.py's order, longest first, where pytest-xdist would start the files with the most tests first).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
bash scripts/docs.sh
set +e
.venv/bin/python -m pytest -q -n "${TSM_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder --durations=40 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
