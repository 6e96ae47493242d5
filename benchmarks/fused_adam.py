"""Fused Adam against torch's per-tensor Adam: whole trainer steps of the point families, side by side.

``igm.models.Player.make_optimizer`` builds torch's Adam with its default (per-tensor loop) update
on the CPU. This script measures what ``fused=True`` (one kernel per parameter) would buy on the
runs the README's defaults make, by patching ``make_optimizer`` for one contender: for each family, a
``Trainer`` runs ``--steps`` steps on grid25 (batch 256, no files, no progress bar) once with the
fused kernel and once with the loop, in interleaved rounds whose order alternates; the ratio
fused / loop is taken inside each round and its median over rounds reported, with the median
milliseconds per step of each for information (this machine is shared and noisy).

    OMP_NUM_THREADS=1 python benchmarks/fused_adam.py                 # gan, sig, gan-si; 5 rounds
    OMP_NUM_THREADS=1 python benchmarks/fused_adam.py --family gan --rounds 3 --steps 200

Writes ``results/fused_adam.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch

from _bench import median, ratios, spread, write_result


def adam(fused: bool) -> Callable[[Any], torch.optim.Optimizer]:
    """A ``Player.make_optimizer`` that builds Adam with ``fused`` as given (SGD players are not timed here)."""

    def make(player: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            player.parameters, lr=player.lr, betas=player.betas, weight_decay=player.weight_decay, fused=fused
        )

    return make


def ms_per_step(family: str, steps: int, fused: bool) -> float:
    """Milliseconds per step of ``steps`` trainer steps of ``family`` on grid25 (seed 0)."""
    import igm.models
    from igm.data import open_data
    from igm.testing import build_model
    from igm.trainer import RunConfig, Trainer

    data = open_data("grid25", seed=0)
    model = build_model(family, data.info)
    run = RunConfig(steps=steps, batch_size=256, log_every=100, sample_every=0, checkpoint_every=0, device="cpu")
    with tempfile.TemporaryDirectory() as out, mock.patch.object(igm.models.Player, "make_optimizer", adam(fused)):
        trainer = Trainer(model, data, run, out, progress=False)
        assert bool(trainer.optimizers[0].param_groups[0]["fused"]) is fused
        start = time.perf_counter()
        trainer.fit()
        return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="*", default=["gan", "sig", "gan-si"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {}
    for family in args.family:
        ms_per_step(family, 20, True)  # warm-up: imports, first kernels
        fused, loop = [], []
        for r in range(args.rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            got = {kind: ms_per_step(family, args.steps, kind) for kind in order}
            fused.append(got[True])
            loop.append(got[False])
        rows[family] = {
            "ratio_fused_over_loop": round(median(ratios(fused, loop)), 3),
            "ms_per_step_fused": spread(fused),
            "ms_per_step_loop": spread(loop),
        }
        print(family, rows[family], flush=True)
    summary = ", ".join(f"{f} {r['ratio_fused_over_loop']:.3f}" for f, r in rows.items())
    write_result("fused_adam", {"steps": args.steps, "rounds": args.rounds, "rows": rows},
                 f"step time fused / loop Adam (median of {args.rounds} rounds): {summary}")


if __name__ == "__main__":
    main()
