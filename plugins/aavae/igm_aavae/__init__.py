"""The adversary-activated VAE (AAVAE) of Hu et al., "On Unifying Deep Generative Models" (eq. 17).

In Hu et al.'s unified view a VAE is a model whose discriminator is degenerate and always
right: with ``y = 0`` the label of real data, ``q^r(y|x)`` (the discriminator with its labels
reversed) is ``q^r(y=0|x) = 1`` for every real x and 0 for every generated one, so only real
examples enter the VAE objective. The AAVAE replaces that oracle with a real discriminator
``D_phi(x) = q_phi(real | x)`` trained as in a GAN (logistic loss, real against generated), and
lets *both* real and generated samples enter the VAE objective, each weighted by its
``q^r_phi(y=0|x) = D_phi(x)``. What this plugin implements, per VAE step on a batch of B real
images and B generated ones x~ ~ p_theta(x) (drawn from the decoder, x~ ~ p(x|z), z ~ N(0, I)):

    loss_vae = -(1/B) [ sum_real D(x) L(x) + fake_weight * sum_fake D(x~) L(x~) ]

with L the model's bound (ELBO for k = 1, the importance-weighted bound for k > 1), D and x~
held fixed (no gradient flows into the discriminator or through the sampling), and

    loss_discriminator = E_real softplus(-l(x)) + E_fake softplus(l(x~))      (the core's jsd critic loss)

Choices where the paper's text leaves room: the weights are the discriminator's probabilities
themselves (not normalised over the batch), so a discriminator that says "real" (D = 1) for
data and "fake" (D = 0) for samples gives exactly the VAE's loss and gradients (a test checks
it); ``fake_weight`` (Hu et al.'s lambda) scales the generated half — 0.1 by default, the
value that improved the test ELBO over the VAE's on binarized MNIST (benchmarks/README.md, Q3);
generated samples are decoder *draws* (binary for a Bernoulli decoder), the kind of x the discriminator
sees in the data. Players: ``discriminator`` then ``vae``; an equal number of fakes per real batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import igm
from igm import JSD, Batch, ConfigError, DataInfo, Player, VariationalConfig, VariationalModel, bind_labels, critic_logits

__version__ = "0.1.0"


@dataclass
class AAVAEConfig(VariationalConfig):
    """Every VariationalConfig field (likelihood, k, networks) plus the discriminator's."""

    d_hidden: tuple[int, ...] = (200,)  # MLP discriminator sizes (conv: igm.nn's standard DCGAN critic)
    d_activation: str = "leaky_relu"
    lr_d: float = 2e-4
    d_beta1: float = 0.5
    fake_weight: float = 0.1  # lambda: weight of the generated half (Q3: 1.0 cost 1.2 nats of test ELBO)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fake_weight < 0:
            raise ConfigError(f"fake_weight must be non-negative, got {self.fake_weight}")


class AAVAE(VariationalModel):
    """Adversary-activated VAE: real and generated samples in the VAE bound, weighted by a discriminator."""

    name = "aavae"
    Config = AAVAEConfig

    def __init__(self, config: AAVAEConfig, data: DataInfo) -> None:
        super().__init__(config, data)
        self.divergence = JSD()
        self.discriminator = self.build_discriminator()

    def build_discriminator(self) -> nn.Module:
        from igm import MLP, DCGANDiscriminator

        c, data = self.config, self.data
        if c.network == "conv":
            return DCGANDiscriminator(data.event_shape, 1.0, self.num_classes)
        return MLP(data.event_shape, (), c.d_hidden, activation=c.d_activation, num_classes=self.num_classes)

    def players(self) -> list[Player]:
        c = self.config
        return [
            Player("discriminator", list(self.discriminator.parameters()), lr=c.lr_d, betas=(c.d_beta1, c.beta2)),
            *super().players(),
        ]

    def critic_fn(self, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
        return bind_labels(self.discriminator, labels if self.num_classes is not None else None)

    def fake(self, real: Tensor, labels: Tensor | None) -> Tensor:
        """As many decoder draws x ~ p(x|z) as real examples (same labels when conditional), detached."""
        with torch.no_grad():
            return self.generator.sample_data(real.shape[0], labels)

    def real_probability(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """q^r(y=0|x) = D(x), the discriminator's probability that x is real, detached: (B,)."""
        with torch.no_grad():
            return torch.sigmoid(critic_logits(self.critic_fn(labels), x, "aavae"))

    def loss(self, player: str, batch: Batch) -> Tensor | Mapping[str, Tensor]:
        real, labels = batch
        labels = labels if self.num_classes is not None else None
        if player == "discriminator":
            return self.divergence.critic_loss(self.critic_fn(labels), real, self.fake(real, labels))
        bound_real = self.bound(real, labels)  # (B,)
        fake = self.fake(real, labels)
        bound_fake = self.bound(fake, labels)  # (B,)
        w_real, w_fake = self.real_probability(real, labels), self.real_probability(fake, labels)
        total = (w_real * bound_real).sum() + self.config.fake_weight * (w_fake * bound_fake).sum()
        return {"loss": -total / real.shape[0], "d_real": w_real.mean(), "d_fake": w_fake.mean()}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("aavae", AAVAE)
