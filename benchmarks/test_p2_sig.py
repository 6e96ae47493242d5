"""P2 — the ``sig`` loss: forward + backward time and peak memory against the naive broadcast formula.

Contenders, on the same float32 data ``x`` (N, D) and parameters ``θ`` (M, D, requires grad),
Gaussian likelihood with σ = 0.1:

- igm:   ``igm.divergences.sig_loss(x, θ, σ)``: ‖x − θ‖² from one (N, M) matmul and two norms,
         then ``logsumexp`` over M; peak memory O(N·M + (N+M)·D);
- naive: ``−mean_i logsumexp_j(−‖x_i − θ_j‖² / 2σ²) + const`` with ``x[:, None] − θ[None]``,
         an (N, M, D) tensor: peak memory O(N·M·D).

Cases: N = M = 256 at D = 2 and D = 2,352 (28·28·3, Stacked MNIST), and N = 256, M = 4,096 at
D = 2,352. The naive formula is NOT run at M = 4,096: its (N, M, D) float32 difference tensor
alone is 256·4,096·2,352·4 B = 9.9 GB, and its square and gradient would need as much again,
more than this machine can hold; igm alone is timed there. A sanity check first asserts that
both formulas give the same loss and gradient (float32, rtol 1e-4) at the small sizes.

Time: contenders alternate in interleaved rounds (order rotating); the per-round ratio
naive/igm is reported as a median (> 1: igm is faster). Target: ≥ 2 at D = 2,352.

Peak memory: torch's CPU allocator keeps no peak statistics and ``tracemalloc`` does not see
its allocations, so each (case, contender) runs once more in a fresh Python process that
allocates the inputs, reads its peak resident set size (``VmHWM`` of ``/proc/self/status``;
not ``getrusage().ru_maxrss``, which Linux carries over from the parent across exec), runs one
forward + backward and reads it again: the increase is the extra peak memory of the call
(resolution: pages; the first call also maps some code and allocator pools, a few MB).
The size of the largest intermediate each formula must hold is given beside it: N·M floats
for igm, N·M·D floats for naive.

Run: ``.venv/bin/python -m pytest benchmarks/test_p2_sig.py --benchmark-only -q``
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import torch
from _bench import Interleaved, ratio_of_minimums, repeats, spread, write_result

from igm.divergences import sig_loss

SIGMA = 0.1
CASES = [(256, 256, 2), (256, 256, 2352), (256, 4096, 2352)]
NAIVE_LIMIT_BYTES = 2 * 1024**3  # skip the naive formula when its (N, M, D) tensor exceeds 2 GiB


def naive_sig_loss(x: torch.Tensor, theta: torch.Tensor, sigma: float) -> torch.Tensor:
    """H_M by broadcasting: an (N, M, D) difference tensor."""
    d = x.shape[1]
    sq = (x[:, None, :] - theta[None, :, :]).pow(2).sum(-1)  # (N, M)  via (N, M, D)
    log_p = -sq / (2 * sigma**2) - 0.5 * d * math.log(2 * math.pi * sigma**2)
    return -(torch.logsumexp(log_p, dim=1) - math.log(theta.shape[0])).mean()


def inputs(n: int, m: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, d, generator=gen)
    theta = (x[torch.arange(m) % n] + 0.05 * torch.randn(m, d, generator=gen)).requires_grad_(True)
    return x, theta


def fwd_bwd(fn, x: torch.Tensor, theta: torch.Tensor) -> None:
    theta.grad = None
    fn(x, theta, SIGMA).backward()


def naive_fits(n: int, m: int, d: int) -> bool:
    return n * m * d * 4 <= NAIVE_LIMIT_BYTES


CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {bench_dir!r})
    import torch
    torch.set_num_threads(1)
    from test_p2_sig import inputs, fwd_bwd, naive_sig_loss, SIGMA
    from igm.divergences import sig_loss
    x, theta = inputs({n}, {m}, {d})
    def hwm():  # peak resident set size of this process image, kB
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    before = hwm()
    fwd_bwd({fn}, x, theta)
    after = hwm()
    print(json.dumps({{"peak_extra_mb": (after - before) / 1024}}))
    """
)


def peak_memory_mb(fn_name: str, n: int, m: int, d: int) -> float:
    from pathlib import Path

    code = CHILD.format(bench_dir=str(Path(__file__).parent), n=n, m=m, d=d, fn=fn_name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mb"]


def test_p2_sig(benchmark, torch_threads) -> None:
    for n, m, d in CASES[:2]:  # the two formulas agree (loss and gradient)
        x, theta = inputs(n, m, d)
        a = sig_loss(x, theta, SIGMA)
        (ga,) = torch.autograd.grad(a, theta)
        b = naive_sig_loss(x, theta, SIGMA)
        (gb,) = torch.autograd.grad(b, theta)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(ga, gb, rtol=1e-3, atol=1e-6 * float(gb.abs().max()))

    benches: dict[str, Interleaved] = {}
    for n, m, d in CASES:
        x, theta = inputs(n, m, d)
        contenders = {"igm": lambda x=x, t=theta: (lambda: fwd_bwd(sig_loss, x, t))}
        if naive_fits(n, m, d):
            contenders["naive"] = lambda x=x, t=theta: (lambda: fwd_bwd(naive_sig_loss, x, t))
        key = f"N={n},M={m},D={d}"
        Interleaved(contenders).round()  # warm-up
        benches[key] = Interleaved(contenders)

    def one_round() -> None:
        for bench in benches.values():
            bench.round()

    rounds = repeats(5)
    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)

    results, parts = {}, []
    for (n, m, d), (key, bench) in zip(CASES, benches.items()):
        entry: dict = {
            "igm_ms": spread([t * 1e3 for t in bench.times["igm"]]),
            "igm_peak_extra_mb": peak_memory_mb("sig_loss", n, m, d),
            "igm_largest_intermediate_mb": n * m * 4 / 2**20,
        }
        if "naive" in bench.times:
            ratio = spread(bench.ratio("naive", "igm"))
            entry.update(
                naive_ms=spread([t * 1e3 for t in bench.times["naive"]]),
                ratio_naive_over_igm_time=ratio,
                ratio_of_minimum_times=ratio_of_minimums(bench.times["naive"], bench.times["igm"]),
                naive_peak_extra_mb=peak_memory_mb("naive_sig_loss", n, m, d),
                naive_largest_intermediate_mb=n * m * d * 4 / 2**20,
            )
            parts.append(
                f"{key}: igm {entry['igm_ms']['median']:.3g} ms vs naive {entry['naive_ms']['median']:.3g} ms "
                f"(x{ratio['median']:.2f}), peak +{entry['igm_peak_extra_mb']:.0f} MB vs +{entry['naive_peak_extra_mb']:.0f} MB"
            )
        else:
            entry["naive"] = (
                f"skipped: its (N, M, D) float32 tensor alone would be {n * m * d * 4 / 1e9:.1f} GB "
                "(and its square and gradient as much again)"
            )
            parts.append(
                f"{key}: igm {entry['igm_ms']['median']:.3g} ms, peak +{entry['igm_peak_extra_mb']:.0f} MB (naive skipped: "
                f"{n * m * d * 4 / 1e9:.1f} GB tensor)"
            )
        results[key] = entry
    summary = f"{rounds} rounds, {torch_threads} thread(s): " + "; ".join(parts)
    write_result(
        "p2_sig",
        {
            "command": ".venv/bin/python -m pytest benchmarks/test_p2_sig.py --benchmark-only -q",
            "setup": {
                "rounds": rounds,
                "torch_threads": torch_threads,
                "sigma": SIGMA,
                "work": "sig_loss(x, theta).backward() (theta requires grad), float32, Gaussian likelihood",
                "memory_method": "fresh process per (case, contender): increase of VmHWM (/proc/self/status) over one "
                "forward+backward after the inputs are allocated",
            },
            "target": "naive/igm time >= 2 at D = 2352; igm memory O(N*M + (N+M)*D)",
            "cases": results,
        },
        summary,
    )
