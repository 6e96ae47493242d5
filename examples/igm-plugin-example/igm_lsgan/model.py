"""The LSGAN family: the core's adversarial recipe with the least-squares divergence by default.

Everything but the default divergence comes from :class:`igm.AdversarialModel`: MLPs
for points and vectors, DCGAN networks for images, a critic then a generator step per round.
``--set divergence=hinge`` trains the hinge-loss GAN instead; any other registered divergence
with a critic (``jsd``, ``kl``, ``wasserstein``) works too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from igm import AdversarialConfig, AdversarialModel, DataInfo


@dataclass
class LSGANConfig(AdversarialConfig):
    """LSGAN settings: every AdversarialConfig field, with the least-squares loss by default."""

    divergence: str = "least-squares"  # least-squares | hinge | any divergence with a critic
    lr_g: float = 2e-4
    lr_d: float = 2e-4


class LSGAN(AdversarialModel):
    """Least-squares GAN (Mao et al.); --set divergence=hinge for the hinge loss."""

    name = "lsgan"
    Config = LSGANConfig

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        """Suggested run settings; the user's --steps/--batch-size and TOML values win."""
        if data.kind == "image":
            return {"steps": 10_000, "batch_size": 64, "sample_every": 500}
        return {"steps": 3_000, "batch_size": 256}
