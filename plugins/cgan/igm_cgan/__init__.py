"""The conditional GAN family (Mirza & Osindero, "Conditional Generative Adversarial Nets", 2014).

Both networks see the label: the generator models ``p(x | y)`` as ``x = G(z, y)`` and the
discriminator tells real pairs ``(x, y)`` from generated ones ``(G(z, y), y)``. For MLPs the
label is a one-hot vector concatenated to the input (noise for G, the flattened example for D);
for the DCGAN networks of ``igm.nn`` it is one-hot label planes stacked onto the input
channels. Labels come from the data source (it must be labelled: digits, MNIST, toy sources);
the generator draws with given labels or, when none are given, uniform ones.

``igm fit cgan --data digits`` trains it; ``igm sample CHECKPOINT --label 3`` draws class 3,
and :func:`igm.images.save_class_grid` draws a grid with one row per class.
Everything else (divergence, networks, optimizers) is :class:`igm.AdversarialConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import igm
from igm import AdversarialConfig, AdversarialModel, DataInfo, points_steps

__version__ = "0.1.0"

# run_defaults on points other than a small mixture (grid25): the label tells the generator which
# mode to draw, so it needs fewer steps than gan's 10,000. At 10,000 cgan took 206-214 s on one
# thread (over the 3-minute budget) for HQ 0.95-0.98 (seeds 0-2); 8,000 keep 25/25 with HQ 0.967-0.977 in
# 5 seeds at 153-162 s (issue 16, benchmarks/README.md "Adversarial point budgets over 5 seeds")
POINT_STEPS = 8_000
# run_defaults on images: the labels take longer to settle than the images. On MNIST, seed 0, with the defaults of a
# conditional DCGAN (igm.adversarial.resolve_conditional), label accuracy 0.984 at 10,000 steps, 0.988 at 12,000 (benchmarks/README.md
# "cgan on MNIST: class-conditional BatchNorm and an averaged generator")
IMAGE_STEPS = 12_000


@dataclass
class CGANConfig(AdversarialConfig):
    """cGAN settings: AdversarialConfig with ``conditional=True`` by default."""

    conditional: bool = True


class CGAN(AdversarialModel):
    """Conditional GAN: labels fed to generator and discriminator."""

    name = "cgan"
    Config = CGANConfig

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        """The adversarial recipe's budget, with :data:`POINT_STEPS` on points that are not a small mixture and
        :data:`IMAGE_STEPS` on images."""
        defaults = super().run_defaults(data)
        if data.kind == "points":
            defaults["steps"] = points_steps(data, defaults["steps"], POINT_STEPS)
        elif data.kind == "image":
            defaults["steps"] = IMAGE_STEPS
        return defaults


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("cgan", CGAN)
