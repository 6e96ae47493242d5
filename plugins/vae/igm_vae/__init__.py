"""The VAE family (Kingma & Welling; Burda et al.'s IWAE; Sohn et al.'s CVAE).

``igm fit vae --data binarized-mnist`` trains the IWAE paper's network (two tanh layers of 200
units, 50 latent units, Bernoulli decoder) on the ELBO; ``--set k=5`` trains the
importance-weighted bound with 5 samples (IWAE); ``--set conditional=true`` a CVAE;
``--set network=conv`` the convolutional pair. The decoder is the checkpoint's generator: its
``sample`` returns the decoder's means (Bernoulli probabilities, or Gaussian means inside the
data's range). ``igm eval run/model.safetensors --metric nll`` estimates the test NLL with
5,000 importance samples. Everything is the core's :class:`igm.variational.VariationalModel`; this
plugin names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import igm
from igm import VariationalConfig, VariationalModel

__version__ = "0.1.0"


@dataclass
class VAEConfig(VariationalConfig):
    """VAE settings: every VariationalConfig field (likelihood, k, networks, optimizer)."""


class VAE(VariationalModel):
    """Variational autoencoder: ELBO (k = 1) or importance-weighted bound (k > 1, IWAE)."""

    name = "vae"
    Config = VAEConfig


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("vae", VAE)
