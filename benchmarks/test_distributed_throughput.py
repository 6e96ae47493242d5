"""Data-parallel throughput: samples per second at 1 and 2 processes (issue 6).

Two workloads, each trained by the real command ``igm fit ... --nproc N`` (torch.distributed.run,
gloo, one DistributedDataParallel per player) with the batch per rank fixed, so the global
batch grows with N (weak scaling):

- ``gan-grid25``: the GAN's MLPs on grid25, batch 256 per rank;
- ``dcgan-stacked-mnist``: the SIG paper's DCGAN (size M) on stacked MNIST, batch 64 per rank
  (needs ``../shared/data/mnist.npz``; skipped without it).

Throughput is read from ``metrics.jsonl`` (steps/s of every logged interval after the first, so
process start-up, rendezvous and data loading are left out) times the global batch. The two
process counts run in interleaved rounds; the figure is the median over rounds of the ratio
``samples/s at 2 / samples/s at 1`` (ideal weak scaling on 2 free cores: 2.0). Every process
runs one torch thread, so one process uses one core and two use two: the ratio shows what the
data-parallel machinery costs, not how torch's own threads compete with it.

It also writes what one step communicates: each player's gradients are all-reduced once per
optimizer step (a ring all-reduce sends and receives 2·(W−1)/W of the gradient bytes per rank),
and buffers (BatchNorm statistics) are broadcast from rank 0 at each forward.

Run: ``.venv/bin/python -m pytest benchmarks/test_distributed_throughput.py --benchmark-only -q -s``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _bench import MNIST, Interleaved, repeats, run_rounds, spread, write_result

IGM = str(Path(sys.executable).parent / "igm")

WORKLOADS = {
    "gan-grid25": {"args": ["gan", "--data", "grid25", "--batch-size", "256"], "steps": 1200, "log_every": 300},
    "dcgan-stacked-mnist": {
        "args": ["gan", "--data", f"stacked-mnist:{MNIST}", "--batch-size", "64", "--set", "network=sig-dcgan", "--set", "g_width=1", "--set", "d_width=1"],
        "steps": 48,
        "log_every": 12,
    },
}


def throughput(workload: dict, nproc: int) -> float:
    """Samples per second (global) of one run, from its metrics log."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "run.toml"
        config.write_text(
            f"[run]\nsteps = {workload['steps']}\nlog_every = {workload['log_every']}\n"
            "sample_every = 0\ncheckpoint_every = 0\n"
        )
        cmd = [IGM, "fit", *workload["args"], "--config", str(config), "--out", f"{tmp}/run", "--nproc", str(nproc), "-q"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core per process: 1 process uses 1 core, 2 use 2
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    batch = int(workload["args"][workload["args"].index("--batch-size") + 1])
    rates = [row["steps_per_s"] for row in rows[1:]]
    return sum(rates) / len(rates) * batch * nproc


def communication(args: list[str], world: int) -> dict:
    """Gradient and buffer bytes a rank sends per training step at world size ``world`` (fp32)."""
    from igm.data import open_data
    from igm.testing import build_model

    spec = args[args.index("--data") + 1]
    info = open_data(spec, 0).info
    sets = {k: v for k, v in (p.split("=") for p in args[args.index("--set") + 1 :: 2])} if "--set" in args else {}
    model = build_model(args[0], info, sets)
    players = {p.name: (sum(q.numel() for q in p.parameters), p.steps) for p in model.players()}
    buffers = sum(b.numel() for b in model.buffers())
    ring = 2 * (world - 1) / world
    grad_bytes = sum(4 * n * steps * ring for n, steps in players.values())
    return {
        "parameters_per_player": {k: n for k, (n, _) in players.items()},
        "buffer_values": buffers,
        "world_size": world,
        "allreduce_bytes_per_rank_per_step": int(grad_bytes),
        "broadcast_buffer_bytes_per_forward": 4 * buffers,
    }


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_distributed_throughput(benchmark, name: str) -> None:
    workload = WORKLOADS[name]
    if "mnist" in name and not MNIST.exists():
        pytest.skip(f"real MNIST not found at {MNIST}")
    rates: dict[int, list[float]] = {1: [], 2: []}

    def contender(nproc: int):
        def prepare():
            return lambda: rates[nproc].append(throughput(workload, nproc))

        return prepare

    bench = Interleaved({f"nproc{n}": contender(n) for n in rates})
    rounds = repeats(3)
    run_rounds(benchmark, bench, rounds)
    scaling = spread([b / a for a, b in zip(rates[1], rates[2])])
    one, two = spread(rates[1]), spread(rates[2])
    summary = (
        f"{name}: {one['median']:.0f} samples/s at 1 process, {two['median']:.0f} at 2 "
        f"(x{scaling['median']:.2f}, ideal 2.0; {rounds} rounds)"
    )
    write_result(
        f"distributed_{name}",
        {
            "command": ".venv/bin/python -m pytest benchmarks/test_distributed_throughput.py --benchmark-only -q -s",
            "workload": {**workload, "batch": "per rank (weak scaling)"},
            "samples_per_s": {"nproc1": one, "nproc2": two},
            "scaling_2_over_1": scaling,
            "communication": {w: communication(workload["args"], w) for w in (2, 8, 16)},
        },
        summary,
    )
