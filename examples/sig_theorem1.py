"""SIG paper, Theorem 1: the finite mixture gives each mode its share of the data.

Yin & Zhou's semi-implicit generator is fitted by the finite-mixture likelihood
``H_M = −(1/N) Σ_i log (1/M) Σ_j p(x_i | θ_j)`` over M generated points θ_j. When the data's K
modes are well separated, a data point of mode k is explained only by the θ_j placed at mode k,
so with ``m_k`` of the M points there, ``−H_M = Σ_k (n_k/N) log(m_k/M) + const``, which is
maximised (Gibbs' inequality) by

    m_k / M = n_k / N        (Theorem 1: generated points are assigned in the data's proportions)

This script checks that numerically on K = 3 modes (means −10, 0, 10, std 0.5, N = 3,000
points with n_1/N swept from 0.05 to 0.9 and the rest split 2:1):

* integer assignments: every (m_1, m_2, m_3) with Σ m_k = M = 20, θ's at the means, scored by
  H_M (the same number as igm's ``sig_loss``); the best one must be within one point of M·n_k/N;
* relaxed assignments: mixture weights w optimised on the same likelihood (EM iterations); they must equal n_k/N to 0.01.

It writes ``sig_theorem1.png``: optimal m_k/M (dots) and w_k (squares) against n_1/N, beside
the closed form n_k/N (lines). Runs in a few seconds::

    python examples/sig_theorem1.py [--out sig_theorem1.png] [--points 18]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys

import torch

from demo_plot import COLORS, Series, plot, titled
from igm import sig_loss

MEANS = torch.tensor([-10.0, 0.0, 10.0])
STD, N, M = 0.5, 3000, 20


def data_for(p1: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """N points (N, 1) with exactly n_k in mode k, and the proportions n_k/N (3,)."""
    n1 = round(p1 * N)
    n2 = round((N - n1) * 2 / 3)
    counts = torch.tensor([n1, n2, N - n1 - n2])
    modes = torch.repeat_interleave(torch.arange(3), counts)
    x = MEANS[modes] + STD * torch.randn(N, generator=generator)
    return x[:, None], counts / N


def log_kernel(x: torch.Tensor) -> torch.Tensor:
    """log N(x_i; μ_k, σ²) for every point and mode, (N, K)."""
    return -0.5 * ((x - MEANS) / STD) ** 2 - math.log(STD * math.sqrt(2 * math.pi))


def best_integer_assignment(x: torch.Tensor) -> torch.Tensor:
    """The (m_1, m_2, m_3) with Σ = M that minimises H_M with the θ's at the means.

    With m_k of the θ's at μ_k, ``(1/M) Σ_j N(x_i; θ_j, σ²) = Σ_k (m_k/M) N(x_i; μ_k, σ²)``, so
    every assignment is scored at once from the (N, K) kernel table; the first one is checked
    against igm's ``sig_loss`` on the M points themselves.
    """
    m = torch.tensor([(a, b, M - a - b) for a, b in itertools.product(range(M + 1), repeat=2) if a + b <= M])
    log_w = torch.log(m / M)  # (C, K), -inf where m_k = 0
    h = -torch.logsumexp(log_kernel(x)[None] + log_w[:, None, :], dim=2).mean(dim=1)  # (C,)
    theta = torch.repeat_interleave(MEANS, m[-1])[:, None]  # (M, 1): the last assignment's points
    assert math.isclose(float(sig_loss(x, theta, STD, "gaussian")), float(h[-1]), rel_tol=1e-4, abs_tol=1e-4)
    return m[int(torch.argmin(h))]


def relaxed_weights(x: torch.Tensor, iters: int = 100) -> torch.Tensor:
    """Mixture weights w (K,) maximising mean_i log Σ_k w_k N(x_i; μ_k, σ²), by EM from uniform."""
    table = log_kernel(x)  # (N, K)
    w = torch.full((3,), 1 / 3)
    for _ in range(iters):
        new = torch.softmax(table + w.log(), dim=1).mean(dim=0)  # responsibilities, averaged
        if float((new - w).abs().max()) < 1e-10:
            return new
        w = new
    return w


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sig_theorem1.png")
    parser.add_argument("--points", type=int, default=18, help="values of n_1/N in the sweep")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and polite on a shared machine
    gen = torch.Generator().manual_seed(0)
    sweep = torch.linspace(0.05, 0.9, args.points).tolist()
    props, ints, relaxed = [], [], []
    for p1 in sweep:
        x, p = data_for(p1, gen)
        props.append(p)
        ints.append(best_integer_assignment(x) / M)
        relaxed.append(relaxed_weights(x))
    props, ints, relaxed = torch.stack(props), torch.stack(ints), torch.stack(relaxed)
    int_err = float((ints - props).abs().max())
    relaxed_err = float((relaxed - props).abs().max())
    print(f"max |m_k/M - n_k/N| = {int_err:.4f} (integer, M = {M}: at most 1/M = {1 / M:.3f})")
    print(f"max |w_k - n_k/N|   = {relaxed_err:.5f} (relaxed)")

    xs = props[:, 0].tolist()
    series = []
    for k in range(3):
        series += [
            Series(xs, props[:, k].tolist(), f"mode {k + 1}", COLORS[k], "line"),
            Series(xs, ints[:, k].tolist(), "", COLORS[k], "dots"),
            Series(xs, relaxed[:, k].tolist(), "", COLORS[k], "squares"),
        ]
    img = plot(series, (0.0, 1.0), (0.0, 1.0), xlabel="data proportion of mode 1, n_1/N", size=(640, 480))
    img = titled(img, "SIG Theorem 1: optimal share of generated points per mode = share of data",
                 ["lines: closed form n_k/N   dots: best integer m_k/M   squares: relaxed weights w_k",
                  f"max |m_k/M - n_k/N| = {int_err:.3f} (M = {M}),  max |w_k - n_k/N| = {relaxed_err:.4f}"])
    img.save(args.out)
    print(f"wrote {args.out}")
    ok = int_err <= 1 / M + 1e-6 and relaxed_err < 0.01
    if not ok:
        print("Error: the optimum does not match the closed form n_k/N", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
