"""Implicit densities: push a Gaussian through a function and estimate the density you get.

An implicit model only says how to sample, ``x = T(h)`` with ``h ~ N(0, 1)``; its density is
not written anywhere. For simple T we know it in closed form (change of variables):

* ``exp(h)`` is log-normal:      p(x) = exp(−(log x)²/2) / (x √(2π)),  x > 0;
* ``h²``    is chi-squared(1):   p(x) = exp(−x/2) / √(2πx),            x > 0 (two branches ±√x).

For a neural generator ``x = G(z)`` trained on log-normal data (igm's ``gan`` with a 1-d
latent, a few hundred steps) we estimate it numerically instead: by the histogram of its
samples, and by the change of variables with autograd, ``p(x) = Σ_{z: G(z)=x} φ(z) / |G'(z)|``
summed over the monotone branches of G on a fine grid of z. The two estimates must agree.

Writes ``implicit_densities.png`` (three histograms, each with its density curve in red)::

    python examples/implicit_densities.py [--steps 600] [--out implicit_densities.png]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch

from demo_plot import side_by_side, titled
from igm import RunConfig, Trainer, histogram, open_data
from igm.testing import build_model


def lognormal_pdf(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.exp(-0.5 * np.log(x) ** 2) / (x * math.sqrt(2 * math.pi)), 0.0)


def chi2_pdf(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.exp(-0.5 * x) / np.sqrt(2 * math.pi * x), 0.0)


def bin_error(samples: np.ndarray, cdf, lo: float, hi: float, bins: int = 40) -> float:
    """Total variation between the samples' histogram and the law's bin probabilities on [lo, hi]."""
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(samples, edges)
    return 0.5 * float(np.abs(counts / samples.size - np.diff(cdf(edges))).sum())


def change_of_variables(gen_net, z_max: float = 6.0, k: int = 4001):
    """G's density p(x) = Σ_branches φ(z)/|G'(z)| (a callable on arrays), and its CDF."""
    z = torch.linspace(-z_max, z_max, k, requires_grad=True)[:, None]  # (k, 1)
    x = gen_net(z)[:, 0]  # (k,)
    (dx,) = torch.autograd.grad(x.sum(), z)  # G'(z), (k, 1)
    z, x, dx = z.detach()[:, 0].numpy(), x.detach().numpy(), dx[:, 0].numpy()
    phi = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    # segment i covers G(z_i)..G(z_{i+1}) with density φ/|G'| at its midpoint
    a, b = np.minimum(x[:-1], x[1:]), np.maximum(x[:-1], x[1:])
    dens = 0.5 * (phi[:-1] / np.abs(dx[:-1]) + phi[1:] / np.abs(dx[1:]))
    mass = 0.5 * (phi[:-1] + phi[1:]) * np.diff(z)  # probability of each z segment

    def pdf(xs: np.ndarray) -> np.ndarray:
        inside = (xs[:, None] >= a) & (xs[:, None] < b)  # (len(xs), k-1)
        return (inside * dens).sum(axis=1)

    def cdf(xs: np.ndarray) -> np.ndarray:  # mass of each segment spread uniformly over it
        frac = np.clip((xs[:, None] - a) / np.maximum(b - a, 1e-12), 0.0, 1.0)
        return (frac * mass).sum(axis=1)

    return pdf, cdf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of the neural generator")
    parser.add_argument("--out", default="implicit_densities.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and polite on a shared machine
    torch.manual_seed(0)
    h = torch.randn(100_000, generator=torch.Generator().manual_seed(0)).numpy()
    norm_cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))
    exp_err = bin_error(np.exp(h), lambda e: norm_cdf(np.log(np.maximum(e, 1e-300))), 0.0, 8.0)
    sq_err = bin_error(h**2, lambda e: 2 * norm_cdf(np.sqrt(e)) - 1, 0.0, 6.0)
    panels = [
        titled(histogram(np.exp(h), density=lognormal_pdf, size=(420, 300)), "x = exp(h): log-normal",
               [f"histogram vs density: TV over bins {exp_err:.3f}"]),
        titled(histogram(h**2, density=chi2_pdf, size=(420, 300)), "x = h^2: chi-squared(1)",
               [f"histogram vs density: TV over bins {sq_err:.3f}"]),
    ]

    # a neural generator with a 1-d latent, trained briefly on log-normal data through igm
    data = open_data("lognormal", seed=0)
    model = build_model("gan", data.info, {"latent_dim": "1", "g_activation": "elu", "g_hidden": "32,32",
                                           "lr_g": "0.002", "lr_d": "0.002"})
    run = RunConfig(steps=args.steps, batch_size=256, log_every=args.steps, sample_every=0, checkpoint_every=0, device="cpu")
    Trainer(model, data, run, out_dir=None, progress=False).fit()
    model.eval()
    with torch.no_grad():
        g = model.generator.sample(50_000, generator=torch.Generator().manual_seed(1))[:, 0].numpy()
    pdf, cdf = change_of_variables(model.generator.net)
    lo, hi = np.quantile(g, [0.005, 0.995])
    self_err = bin_error(g[(g >= lo) & (g <= hi)], lambda e: (cdf(e) - cdf(np.array([lo]))) / (cdf(np.array([hi])) - cdf(np.array([lo]))), lo, hi)
    fit_err = bin_error(g, lambda e: norm_cdf(np.log(np.maximum(e, 1e-300))), 0.0, 8.0)
    panels.append(
        titled(histogram(g, density=pdf, size=(420, 300)), f"neural G(z), {args.steps} GAN steps on lognormal",
               [f"histogram vs change of variables: TV {self_err:.3f}", f"vs the true log-normal: TV {fit_err:.3f}"])
    )
    side_by_side(panels).save(args.out)
    print(f"exp(h): TV {exp_err:.4f}   h^2: TV {sq_err:.4f}   G: histogram vs autograd density TV {self_err:.4f}, "
          f"vs log-normal TV {fit_err:.4f}")
    print(f"wrote {args.out}")
    ok = exp_err < 0.02 and sq_err < 0.02 and self_err < 0.05
    if not ok:
        print("Error: a histogram disagrees with its density", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
