"""Generators: anything that draws samples, ``sample(n, labels=None, generator=None)``.

- :class:`Generator` — the base every family's sampler subclasses (a VAE decoder, an RBM's
  Gibbs chain, ...). ``sample`` returns a tensor of shape ``(n, *event_shape)``.
- :class:`ImplicitGenerator` — a deterministic transform ``x = T(z)`` of a standard Gaussian
  latent ``z``; its density is implicit.
- :class:`SemiImplicitGenerator` — ``theta = T(z)``, then ``x ~ p(x | theta)`` from an explicit
  :class:`igm.likelihoods.Likelihood` (``GaussianLikelihood`` with bandwidth sigma, ``BernoulliLikelihood``).
  Its marginal is a continuous mixture; the ``sig`` divergence fits it by maximum likelihood
  of the finite mixture over M draws of theta.

Conditional generators have ``num_classes`` set and take integer labels; without labels they
draw them uniformly. Passing a seeded ``torch.Generator`` makes a draw reproducible.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from igm.draws import rand, randint, randn  # noqa: F401 - re-exported: igm.randn is this module's
from igm.likelihoods import BernoulliLikelihood, GaussianLikelihood, Likelihood  # noqa: F401 - re-exported


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
