"""The GAN family (Goodfellow et al.): a generator against a critic under a chosen divergence.

``igm fit gan --data grid25`` trains MLPs on points; image data gets DCGAN networks.
``--set divergence=wasserstein`` gives WGAN-GP, ``--set loss=minimax`` the original minimax
generator loss, ``--set divergence=kl direction=forward`` a KL-GAN. Everything is the core's
:class:`igm.AdversarialModel`; this plugin names it and picks defaults per kind of data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import igm
from igm.data import DataInfo
from igm.models import AdversarialConfig, AdversarialModel

__version__ = "0.1.0"


@dataclass
class GANConfig(AdversarialConfig):
    """GAN settings: every AdversarialConfig field (divergence, networks, optimizers)."""


class GAN(AdversarialModel):
    """Generative adversarial network (jsd, kl or wasserstein; MLP or DCGAN)."""

    name = "gan"
    Config = GANConfig

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return {"steps": 10_000, "batch_size": 64, "sample_every": 500}
        return {"steps": 5_000, "batch_size": 256}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("gan", GAN)
