#!/usr/bin/env bash
# Set up a development environment in .venv: the core and every plugin editable, the test
# tools, and torch pinned to the CPU build by constraints.txt. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
plugins=()
for dir in plugins/*/; do
    [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir")
done
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt -e ".[test]" "${plugins[@]}"
echo "igm is set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
