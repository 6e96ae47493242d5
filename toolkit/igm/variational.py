"""The variational building block shared by the VAE-family plugins (vae, aavae, ...).

:class:`VariationalModel` owns an encoder q(z|x) = N(mu(x), diag exp(logvar(x))) and a decoder
p(x|z) under a standard normal prior; its decoder is ``model.generator``
(:class:`DecoderGenerator`). It gives the per-example bounds of :mod:`igm.bounds`:

- :meth:`VariationalModel.bound`: the training objective per example, (B,): the
  importance-weighted bound with ``k`` samples (k > 1, IWAE), or the ELBO (k = 1, VAE; with the
  closed-form KL when ``analytic_kl``, else the single-sample estimate);
- :meth:`VariationalModel.log_weights`: the k log importance weights (k, B) that the ``nll``
  metric turns into a test log-likelihood estimate (the :class:`igm.bounds.HasLikelihoodBound`
  protocol).

Likelihoods: ``bernoulli`` (the decoder outputs logits; for binary or [0, 1] data) and
``gaussian`` (the decoder outputs means; one shared standard deviation, learned unless
``sigma`` is set). ``likelihood="auto"`` picks bernoulli for binarized data or data in [0, 1],
gaussian otherwise. Networks: ``mlp`` (two tanh layers of 200 units, 50 latents: the IWAE
paper's one-stochastic-layer net, by default) or ``conv`` (:mod:`igm.nn.conv_vae`); ``auto`` is
mlp for vectors, points and binarized images, conv for other images. ``conditional=true`` makes
both networks take class labels (CVAE).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from einops import repeat
from torch import Tensor, nn

from igm import bounds
from igm.data.base import Batch, DataInfo
from igm.errors import ConfigError
from igm.draws import rand, randn
from igm.generators import Generator
from igm.likelihoods import bernoulli_log_prob, gaussian_log_prob
from igm.models import Model, Player
from igm.nn.factory import conditional_classes

MIN_LOG_STD = math.log(1e-3)  # floor of the learned Gaussian standard deviation


@dataclass
class VariationalConfig:
    """Encoder, decoder, likelihood and objective of a VAE-family model."""

    likelihood: Literal["auto", "bernoulli", "gaussian"] = "auto"  # auto: bernoulli for [0, 1] / binarized data
    k: int = 1  # importance samples per example: 1 = VAE (ELBO), > 1 = IWAE bound
    analytic_kl: bool = True  # k = 1: closed-form KL(q || p) instead of the single-sample estimate
    latent_dim: int = 50
    hidden: tuple[int, ...] = (200, 200)  # MLP hidden sizes (encoder; the decoder mirrors them)
    activation: str = "tanh"  # relu | leaky_relu | tanh | elu
    network: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for non-binarized images, mlp otherwise
    conv_width: float = 1.0  # channel multiplier of the conv pair
    sigma: float = 0.0  # gaussian likelihood: fixed std (> 0), or 0 to learn one shared std
    conditional: bool = False  # CVAE: both networks take labels (needs a labelled data source)
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be at least 1 (1 = VAE, > 1 = IWAE), got {self.k}")
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be positive, got {self.latent_dim}")
        if self.sigma < 0:
            raise ConfigError(f"sigma must be 0 (learned) or positive, got {self.sigma}")


def resolve_variational(config: Any, data: DataInfo) -> Any:
    """``config`` with ``likelihood`` and ``network`` "auto" replaced by their values for ``data``."""
    likelihood = config.likelihood
    if likelihood == "auto":
        unit = data.extra.get("binarized") or data.value_range == (0.0, 1.0)
        likelihood = "bernoulli" if unit else "gaussian"
    network = config.network
    if network == "auto":
        network = "conv" if data.kind == "image" and not data.extra.get("binarized") else "mlp"
    return dataclasses.replace(config, likelihood=likelihood, network=network)


class DecoderGenerator(Generator):
    """The decoder p(x|z) of a VAE as a generator: z ~ N(0, I), x = the likelihood's mean.

    ``sample`` returns the decoder's *means* — Bernoulli probabilities sigmoid(logits) for a
    bernoulli likelihood, Gaussian means (clamped into the data's value range, if it has one)
    for a gaussian one — which is what VAE papers show. :meth:`sample_data` draws x ~ p(x|z)
    instead.
    """

    def __init__(
        self,
        net: nn.Module,
        latent_dim: int,
        event_shape: tuple[int, ...],
        likelihood: Literal["bernoulli", "gaussian"],
        sigma: float = 0.0,
        value_range: tuple[float, float] | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(event_shape, num_classes)
        self.net = net
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.value_range = value_range
        self.fixed_log_std = math.log(sigma) if sigma > 0 else None
        if likelihood == "gaussian" and self.fixed_log_std is None:
            self.log_std = nn.Parameter(torch.zeros(()))  # one shared, learned log standard deviation

    def prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.latent_dim), generator, self.device)  # (n, L)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The decoder's raw output for z (n, L): logits (bernoulli) or means (gaussian), (n, *event)."""
        return self.net(z) if self.num_classes is None else self.net(z, labels)

    def std_log(self) -> Tensor:
        """log sigma of the gaussian likelihood (floored at log 1e-3 when learned)."""
        if self.fixed_log_std is not None:
            return torch.tensor(self.fixed_log_std, device=self.device)
        return self.log_std.clamp(min=MIN_LOG_STD)

    def log_prob(self, x: Tensor, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """log p(x | z) summed over the event dimensions: x (B, *event), z (B, L) -> (B,).

        ``z`` may hold c draws per example, (c, B, L) -> (c, B): the decoder runs once on all
        c * B of them and x broadcasts over the draws without being copied.
        """
        if z.dim() == 3:
            c, b = z.shape[:2]
            y = None if labels is None else repeat(labels, "b -> (c b)", c=c)
            out = self.forward(z.flatten(0, 1), y).unflatten(0, (c, b))  # (c*B, *event) -> (c, B, *event)
        else:
            out = self.forward(z, labels)  # (B, *event)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        return gaussian_log_prob(x, out, self.std_log())

    def mean(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """E[x | z], inside the data's value range: (n, L) -> (n, *event)."""
        out = self.forward(z, labels)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)
        if self.value_range is not None:
            return out.clamp(*self.value_range)
        return out

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        labels = self.labels_for(n, labels, generator)
        return self.mean(self.prior(n, generator), labels)

    def sample_data(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x | z), z ~ N(0, I): binary images for bernoulli, noisy means for gaussian."""
        labels = self.labels_for(n, labels, generator)
        out = self.forward(self.prior(n, generator), labels)
        if self.likelihood == "bernoulli":
            return (rand(tuple(out.shape), generator, out.device) < torch.sigmoid(out)).to(out.dtype)
        return out + self.std_log().exp() * randn(tuple(out.shape), generator, out.device)


class GaussianEncoder(nn.Module):
    """q(z | x): a network whose 2L outputs are the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, net: nn.Module, num_classes: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.net(x) if self.num_classes is None else self.net(x, labels)  # (N, 2L)
        mu, logvar = h.chunk(2, dim=-1)  # (N, L) each (chunk: a hot path, cheaper than an einops pattern)
        return mu, logvar


class VariationalModel(Model):
    """Encoder + decoder trained on the ELBO (k = 1) or the importance-weighted bound (k > 1)."""

    Config: ClassVar[type] = VariationalConfig

    def __init__(self, config: VariationalConfig, data: DataInfo) -> None:
        config = resolve_variational(config, data)
        super().__init__(config, data)
        self.num_classes = conditional_classes(config, data)
        enc_net, dec_net = self.build_networks()
        self.encoder = GaussianEncoder(enc_net, self.num_classes)
        self.generator = DecoderGenerator(
            dec_net, config.latent_dim, data.event_shape, config.likelihood, config.sigma, data.value_range, self.num_classes
        )

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        """The encoder network x -> (N, 2L) and the decoder network z -> (N, *event) for the config."""
        from igm.nn import MLP, ConvDecoder, ConvEncoder

        c, data = self.config, self.data
        if c.network == "conv":
            try:
                return (
                    ConvEncoder(data.event_shape, 2 * c.latent_dim, c.conv_width, self.num_classes),
                    ConvDecoder(c.latent_dim, data.event_shape, c.conv_width, self.num_classes),
                )
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if c.activation == "maxout":
            raise ConfigError("activation=maxout is not offered for VAE networks: use tanh, relu, leaky_relu or elu")
        encoder = MLP(data.event_shape, (2 * c.latent_dim,), c.hidden, c.activation, num_classes=self.num_classes)
        decoder = MLP((c.latent_dim,), data.event_shape, c.hidden[::-1], c.activation, num_classes=self.num_classes)
        return encoder, decoder

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        """Images: batch 64 (≈ 40 passes over MNIST's 60,000 in 40,000 steps); vectors: batch 256."""
        if data.kind == "image":
            return {"steps": 40_000, "batch_size": 64, "sample_every": 5_000, "checkpoint_every": 5_000}
        return {"steps": 5_000, "batch_size": 256}

    def vae_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.generator.parameters()]

    def players(self) -> list[Player]:
        c = self.config
        return [Player("vae", self.vae_parameters(), lr=c.lr, betas=(c.beta1, c.beta2))]

    # ---- bounds --------------------------------------------------------------------------

    def _labels(self, labels: Tensor | None) -> Tensor | None:
        if self.num_classes is None:
            return None
        if labels is None:
            raise ConfigError("this model is conditional (CVAE): its bound needs the data's labels")
        return labels

    def log_weights(
        self, x: Tensor, k: int, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``log p(x, z_i) - log q(z_i | x)`` for k draws z_i ~ q(z | x): x (B, *event) -> (k, B)."""
        labels = self._labels(labels)
        mu, logvar = self.encoder(x, labels)  # (B, L) each
        return bounds.log_weights(x, mu, logvar, self.generator.log_prob, k, labels, generator)

    def log_likelihood_bound(self, x: Tensor, k: int, labels: Tensor | None = None) -> Tensor:
        """The importance-weighted bound L_k on log p(x) per example (B,) (k = 1: the ELBO)."""
        return bounds.iw_bound(self.log_weights(x, k, labels))

    def bound(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The training objective per example (B,): L_k for k > 1, else the ELBO."""
        c = self.config
        if c.k == 1 and c.analytic_kl:
            labels = self._labels(labels)
            mu, logvar = self.encoder(x, labels)
            return bounds.elbo_analytic(x, mu, logvar, self.generator.log_prob, labels)
        return bounds.iw_bound(self.log_weights(x, c.k, labels))

    def loss(self, player: str, batch: Batch) -> Tensor | Mapping[str, Tensor]:
        x, labels = batch
        return -self.bound(x, labels).mean()
