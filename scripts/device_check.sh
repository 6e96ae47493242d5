#!/usr/bin/env bash
# The GPU checks in one call, for a machine with CUDA and torch but no network (the lent device
# machine): install the core and every plugin editable without dependencies, then run the GPU
# benchmark and the whole test suite. Output goes to $OUT (default benchmarks/results/device).
# MNIST is read from $IGM_MNIST, else .device-data/mnist.npz (a git-ignored copy made beside the
# repository before the call: mkdir -p .device-data && cp ../shared/data/mnist.npz .device-data/).
#     bash scripts/device_check.sh      # at most 9.5 minutes: run it with timeout_s 600
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 IGM_MNIST=${IGM_MNIST:-$PWD/.device-data/mnist.npz}
plugins=()
for dir in plugins/*/; do [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir"); done
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . "${plugins[@]}" 2>&1 | tail -3
python3 -c "import torch, igm; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    | tee "$OUT/env.txt"
timeout 200 python3 benchmarks/gpu.py 2>&1 | tee "$OUT/gpu.txt"
cp benchmarks/results/gpu.md benchmarks/results/gpu.json "$OUT/" 2>/dev/null
timeout 60 python3 -m pytest -q -x -p no:cacheprovider -p no:randomly tests/test_devices.py tests/test_distributed.py \
    2>&1 | tee "$OUT/pytest_devices.txt"
timeout 280 python3 -m pytest -q -p no:cacheprovider 2>&1 | tail -40 | tee "$OUT/pytest.txt"
