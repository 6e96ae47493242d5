"""Training with subnormal floats flushed to zero against keeping them: the speed, and the same bits.

x86 CPUs compute with subnormal float32 values (below ``tiny`` = 1.18e-38) on a slow path, and
Adam's second moments of parameters whose gradients are nearly 0 decay into that range; the
trainer flushes them to zero while it trains (``RunConfig.flush_subnormals``,
``toolkit/igm/subnormals.py``). Two measurements, on one torch thread:

1. a second moment decaying towards 0 (``v *= 0.9; sqrt(v)`` over tensors shaped as gan's point
   generator, 10 -> 256 -> 256 -> 2), flushing off and on (mean microseconds of a round);
2. whole runs of ``igm fit FAMILY --data SOURCE`` at their defaults (the same plan ``igm fit``
   makes: seed, budget, schedules), twice side by side in one process: one run keeps
   subnormals, the other flushes them. They take turns in chunks of steps, each with its own
   RNG state, so each follows the trajectory it would follow alone; the order of a turn
   alternates. Reported: the median per-turn ratio of milliseconds per step (flush / keep), the
   subnormal share of the keeping run's Adam state at the end, and whether the two runs end
   with the same parameters to the bit.

    OMP_NUM_THREADS=1 python benchmarks/subnormals.py                      # about 15 minutes
    OMP_NUM_THREADS=1 python benchmarks/subnormals.py --rows gan/grid25 --steps 2000

Writes ``results/subnormals.json``.
"""

from __future__ import annotations

import argparse
import time

import torch

from _bench import median, ratios, spread, write_result

ROWS = ("gan/grid25", "gan-si/ring8", "sig/grid25")
SHAPES = ((256, 10), (256,), (256, 256), (256,), (2, 256), (2,))  # gan's point generator (latent 10)


def decay_us(flush: bool, rounds: int) -> float:
    """Mean microseconds of one round of a decaying second moment: ``v *= β2``, then ``sqrt(v)``.

    ``v`` starts at 1e-37 over :data:`SHAPES` and goes down by β2 = 0.9 a round (Adam's ``v`` of a
    parameter whose gradient is 0): kept, it is subnormal from round 22 until it reaches 0 near
    round 175; flushed, it is 0 from round 22. ``sqrt`` is what takes the slow path: torch's CPU
    ``sqrt`` of a subnormal input is slow whether or not the mode is on, so flushing helps by
    never making one.
    """
    torch.set_flush_denormal(flush)
    try:
        v = [torch.full(shape, 1e-37) for shape in SHAPES]
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            torch._foreach_mul_(v, 0.9)
            torch._foreach_sqrt(v)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_flush_denormal(False)
    return sum(times) / len(times) * 1e6


class Side:
    """One run of a row, stepped in turns with its own RNG state."""

    def __init__(self, row: str, steps: int | None, flush: bool) -> None:
        from igm.runs import plan_fit
        from igm.trainer import Trainer

        family, data = row.split("/")
        plan = plan_fit(family, data, flags={} if steps is None else {"steps": steps})
        self.trainer = Trainer(plan.model, plan.source, plan.run, progress=False)
        self.trainer.begin()  # seeds torch's RNG as igm fit does
        self.rng = torch.get_rng_state()
        self.flush, self.times = flush, []

    @property
    def left(self) -> int:
        return self.trainer.run.steps - self.trainer.step

    def turn(self, steps: int) -> None:
        from igm.subnormals import flush_subnormals

        torch.set_rng_state(self.rng)
        with flush_subnormals(self.flush):
            start = time.perf_counter()
            for _ in range(steps):
                self.trainer.train_step()
            self.times.append((time.perf_counter() - start) / steps * 1e3)
        self.rng = torch.get_rng_state()

    def subnormal_share(self) -> float:
        tiny = torch.finfo(torch.float32).tiny
        states = [v for opt in self.trainer.optimizers for s in opt.state.values() for k, v in s.items()
                  if k in ("exp_avg", "exp_avg_sq")]
        return sum(int(((v != 0) & (v.abs() < tiny)).sum()) for v in states) / sum(v.numel() for v in states)


def side_by_side(row: str, steps: int | None, chunk: int) -> dict[str, object]:
    keep, flush = Side(row, steps, False), Side(row, steps, True)
    turn = 0
    while keep.left:
        n = min(chunk, keep.left)
        for side in (keep, flush) if turn % 2 == 0 else (flush, keep):
            side.turn(n)
        turn += 1
    a, b = keep.trainer.model.state_dict(), flush.trainer.model.state_dict()
    return {"steps": keep.trainer.step, "ratio_flush_over_keep": round(median(ratios(flush.times, keep.times)), 3),
            "ms_per_step_keep": spread(keep.times), "ms_per_step_flush": spread(flush.times),
            "subnormal_share_of_adam_state_keep": round(keep.subnormal_share(), 4),
            "same_bits": all(torch.equal(a[k], b[k]) for k in a)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: each row's own budget)")
    parser.add_argument("--chunk", type=int, default=250, help="steps per turn")
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the decaying second moment")
    args = parser.parse_args()
    torch.set_num_threads(1)
    decay = {"keep": round(decay_us(False, args.rounds), 1), "flush": round(decay_us(True, args.rounds), 1)}
    print("a decaying second moment, us per round:", decay, flush=True)
    runs = {}
    for row in args.rows:
        runs[row] = side_by_side(row, args.steps, args.chunk)
        print(row, runs[row], flush=True)
    summary = (f"a decaying second moment keep / flush: {decay['keep']:.0f} / {decay['flush']:.0f} us a round; "
               "runs flush / keep: "
               + ", ".join(f"{r} {v['ratio_flush_over_keep']:.3f} (same bits: {v['same_bits']})" for r, v in runs.items()))
    write_result("subnormals", {"decay_us_per_round": decay, "runs": runs, "chunk": args.chunk}, summary)
    print(summary)


if __name__ == "__main__":
    main()
