"""Generators: anything that draws samples, ``sample(n, labels=None, generator=None)``.

- :class:`Generator` — the base every family's sampler subclasses (a VAE decoder, an RBM's
  Gibbs chain, ...). ``sample`` returns a tensor of shape ``(n, *event_shape)``.
- :class:`ImplicitGenerator` — a deterministic transform ``x = T(z)`` of a standard Gaussian
  latent ``z``; its density is implicit.
- :class:`SemiImplicitGenerator` — ``theta = T(z)``, then ``x ~ p(x | theta)`` from an explicit
  :class:`Likelihood` (:class:`GaussianLikelihood` with bandwidth sigma, :class:`BernoulliLikelihood`).
  Its marginal is a continuous mixture; the ``sig`` divergence fits it by maximum likelihood
  of the finite mixture over M draws of theta.

Conditional generators have ``num_classes`` set and take integer labels; without labels they
draw them uniformly. Passing a seeded ``torch.Generator`` makes a draw reproducible.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn


class Generator(nn.Module):
    """Draws samples of shape ``(n, *event_shape)``."""

    def __init__(self, event_shape: tuple[int, ...], num_classes: int | None = None) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.num_classes = num_classes
        self._device: torch.device | None = None

    @property
    def device(self) -> torch.device:
        """Where the generator's tensors live (cached; ``.to()`` and friends refresh it)."""
        if self._device is None:
            first = next(itertools.chain(self.parameters(), self.buffers()), None)
            self._device = first.device if first is not None else torch.device("cpu")
        return self._device

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - nn.Module's hook for .to(), .cuda(), ...
        self._device = None
        return super()._apply(fn, recurse)

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def labels_for(self, n: int, labels: Tensor | int | None, generator: torch.Generator | None = None) -> Tensor | None:
        """Labels of a conditional draw: the given ones (checked), or uniform ones; None if unconditional."""
        if self.num_classes is None:
            return None
        if labels is None:
            return randint(self.num_classes, n, generator, self.device)
        labels = torch.as_tensor(labels, device=self.device).long()
        if labels.ndim == 0:
            labels = labels.expand(n)
        if labels.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in 0..{self.num_classes - 1}")
        return labels


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal draws on ``device``, from ``generator`` (any device) or the global RNG."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    if generator is None:
        return torch.randint(high, (n,), device=device)
    return torch.randint(high, (n,), generator=generator, device=generator.device).to(device)


class ImplicitGenerator(Generator):
    """``x = net(z)`` (or ``net(z, labels)``) with ``z ~ N(0, I)`` of size ``latent_dim``."""

    def __init__(
        self, net: nn.Module, latent_dim: int, event_shape: tuple[int, ...], num_classes: int | None = None
    ) -> None:
        super().__init__(event_shape, num_classes)
        self.net = net
        self.latent_dim = latent_dim

    def prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return randn((n, self.latent_dim), generator, self.device)  # (n, latent_dim)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z) if self.num_classes is None else self.net(z, labels)  # (n, *event_shape)

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        labels = self.labels_for(n, labels, generator)
        return self.forward(self.prior(n, generator), labels)


class Likelihood(nn.Module):
    """An explicit p(x | theta): draws and log-densities (summed over the event dimensions)."""

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        raise NotImplementedError


class GaussianLikelihood(Likelihood):
    """x ~ N(theta, sigma² I): theta is the mean, sigma a fixed bandwidth."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return theta + self.sigma * randn(tuple(theta.shape), generator, theta.device)

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        d = x[0].numel()
        sq = (x - theta).flatten(1).pow(2).sum(1)
        return -sq / (2 * self.sigma**2) - 0.5 * d * math.log(2 * math.pi * self.sigma**2)


class BernoulliLikelihood(Likelihood):
    """x ~ Bernoulli(theta) per dimension: theta holds probabilities in (0, 1)."""

    eps = 1e-6

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return (rand(tuple(theta.shape), generator, theta.device) < theta).to(theta.dtype)

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        p = theta.clamp(self.eps, 1 - self.eps)
        return (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)


class SemiImplicitGenerator(ImplicitGenerator):
    """``theta = net(z)``, ``x ~ likelihood(theta)``: an implicit mixing distribution over an explicit kernel."""

    def __init__(
        self,
        net: nn.Module,
        latent_dim: int,
        event_shape: tuple[int, ...],
        likelihood: Likelihood,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(net, latent_dim, event_shape, num_classes)
        self.likelihood = likelihood

    def params(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n draws of theta = T(z): the mixture components' parameters, (n, *event_shape)."""
        return super().sample(n, labels, generator)

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.likelihood.sample(self.params(n, labels, generator), generator)
