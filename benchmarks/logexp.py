"""igm.logexp against torch.logsumexp: exp's slow path, the semi-implicit loss, whole trainer steps.

torch's CPU ``exp`` is fast for arguments whose result is a normal float and far slower below
``log(finfo.tiny)`` (−87.3 in float32), the arguments a sharp kernel's log-densities are made of.
``igm.logsumexp`` clamps them to a floor and zeroes them after (``toolkit/igm/logexp.py``). Three
measurements, each side by side in one process on one torch thread (the machine is shared: read
the ratios, not the milliseconds):

1. ``exp`` of a (256, 512) float32 tensor filled with one value, for values around the edge;
2. the semi-implicit loss ``H_M`` forward and backward, N = 256 ring8 points against M = 512
   centres near the modes, at three bandwidths, with ``torch.logsumexp`` and with igm's,
   alternated call by call (medians per call and of the per-pair ratios);
3. whole trainer steps of sig and gan-si on ring8 once the bandwidth is annealed to σ = 0.01,
   the loss with ``torch.logsumexp`` patched in against igm's, in interleaved rounds whose order
   alternates (median of the per-round ratios).

    OMP_NUM_THREADS=1 python benchmarks/logexp.py            # about 2 minutes
    OMP_NUM_THREADS=1 python benchmarks/logexp.py --rounds 3 --steps 200

Writes ``results/logexp.json``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from unittest import mock

import torch

from _bench import median, ratios, spread, write_result

SHAPE = (256, 512)


def per_call_ms(fn: Callable[[], object], calls: int) -> float:
    """Median milliseconds of ``calls`` calls of ``fn`` (after a few to warm it)."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times) * 1e3


def torch_log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def exp_by_argument(calls: int) -> dict[str, float]:
    return {f"{v:g}": per_call_ms(lambda t=torch.full(SHAPE, v): t.exp(), calls)
            for v in (-50.0, -87.0, -87.5, -100.0, -1000.0)}


def loss_pairs(calls: int) -> dict[str, dict[str, float]]:
    """H_M forward + backward per call, torch's log-sum-exp against igm's, alternated."""
    from igm.data import open_data
    from igm.logexp import log_mean_exp
    from igm.likelihoods import pairwise_log_prob

    source = open_data("ring8", seed=0)
    x = next(source.stream(SHAPE[0], 0))[0]
    means = torch.tensor(source.info.extra["means"], dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    centres = means[torch.randint(len(means), (SHAPE[1],), generator=g)] + 0.02 * torch.randn(SHAPE[1], 2, generator=g)
    centres.requires_grad_()
    rows = {}
    for sigma in (1.0, 0.1, 0.01):
        def step(lme: Callable[..., torch.Tensor], sigma: float = sigma) -> None:
            (-lme(pairwise_log_prob(x, centres, "gaussian", sigma), 1).mean()).backward()

        theirs, ours = [], []
        for i in range(calls):
            pair = [(theirs, torch_log_mean_exp), (ours, log_mean_exp)]
            for times, lme in pair if i % 2 else reversed(pair):
                start = time.perf_counter()
                step(lme)
                times.append(time.perf_counter() - start)
        rows[f"sigma {sigma:g}"] = {"torch_ms": median(theirs) * 1e3, "igm_ms": median(ours) * 1e3,
                                    "ratio_igm_over_torch": round(median(ratios(ours, theirs)), 3)}
        print("H_M forward+backward", sigma, rows[f"sigma {sigma:g}"], flush=True)
    return rows


def ms_per_step(family: str, steps: int, use_torch: bool) -> float:
    """Milliseconds per trainer step of ``family`` on ring8 at σ = 0.01 (the anneal is done)."""
    import igm.divergences.sig
    from igm.data import open_data
    from igm.testing import build_model
    from igm.trainer import RunConfig, Trainer

    data = open_data("ring8", seed=0)
    model = build_model(family, data.info, {"anneal_steps": 1})  # σ is the data's 0.01 from step 1 on
    run = RunConfig(steps=steps + 1, batch_size=256, log_every=100, sample_every=0, checkpoint_every=0, device="cpu")
    patch = torch_log_mean_exp if use_torch else igm.divergences.sig.log_mean_exp
    with mock.patch.object(igm.divergences.sig, "log_mean_exp", patch):
        trainer = Trainer(model, data, run, None, progress=False)
        trainer.train_step()  # past the anneal
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp_ms = exp_by_argument(args.calls)
    print("exp of a (256, 512) tensor, ms by argument:", exp_ms, flush=True)
    loss = loss_pairs(args.calls)
    steps = {}
    for family in ("sig", "gan-si"):
        ms_per_step(family, 20, False)  # warm-up
        ours, theirs = [], []
        for r in range(args.rounds):
            for use_torch in ((True, False) if r % 2 == 0 else (False, True)):
                (theirs if use_torch else ours).append(ms_per_step(family, args.steps, use_torch))
        steps[family] = {"ratio_igm_over_torch": round(median(ratios(ours, theirs)), 3),
                         "ms_per_step_igm": spread(ours), "ms_per_step_torch": spread(theirs)}
        print(family, steps[family], flush=True)
    summary = (f"exp at -87.0 / -87.5: {exp_ms['-87']:.2f} / {exp_ms['-87.5']:.2f} ms; H_M fwd+bwd at σ 0.01 "
               f"igm / torch {loss['sigma 0.01']['ratio_igm_over_torch']:.3f}; ring8 steps igm / torch: "
               + ", ".join(f"{f} {r['ratio_igm_over_torch']:.3f}" for f, r in steps.items()))
    write_result("logexp", {"shape": list(SHAPE), "exp_ms_by_argument": exp_ms, "loss": loss, "steps": steps,
                            "rounds": args.rounds, "steps_per_round": args.steps}, summary)
    print(summary)


if __name__ == "__main__":
    main()
