"""Divergences: sample-based discrepancies between data and a generator.

Built in: ``jsd`` (logistic critic), ``kl`` (density-ratio critic, either direction),
``wasserstein`` (WGAN-GP critic), and the critic-free ``sig`` (semi-implicit mixture
likelihood) and ``mmd`` (squared MMD). See :mod:`igm.divergences.base` for the contract.
"""

from __future__ import annotations

from igm.divergences.base import Divergence
from igm.divergences.jsd import JSD
from igm.divergences.kl import KL
from igm.divergences.mmd import MMD
from igm.divergences.sig import SIG, sig_loss
from igm.divergences.wasserstein import Wasserstein, gradient_penalty

BUILTIN_DIVERGENCES: dict[str, type[Divergence]] = {
    "jsd": JSD,
    "kl": KL,
    "wasserstein": Wasserstein,
    "sig": SIG,
    "mmd": MMD,
}

__all__ = [
    "BUILTIN_DIVERGENCES",
    "JSD",
    "KL",
    "MMD",
    "SIG",
    "Divergence",
    "Wasserstein",
    "gradient_penalty",
    "sig_loss",
]
