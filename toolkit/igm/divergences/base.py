"""The divergence contract: a sample-based discrepancy between data and a generator.

A :class:`Divergence` turns a batch of data ``real`` and a batch from the generator ``fake``
into scalar losses. It owns no networks and no optimiser: when it needs a critic (a
discriminator), the *model* owns that network and passes it in as a callable
``critic(x) -> logits`` returning shape ``(N,)`` or ``(N, 1)``.

Writing a new divergence (in igm or in a plugin):

* subclass :class:`Divergence`, set ``name`` (the string users type, e.g. ``"jsd"``) and,
  for a divergence estimated without a critic (MMD, ...), ``needs_critic = False``;
* put its options in a ``@dataclass`` named ``Config`` (every field with a default;
  ``Literal[...]`` fields are checked automatically, check the rest in ``__post_init__`` and
  raise :class:`igm.errors.ConfigError`). ``Divergence(**options)`` builds the config, so an
  unknown option raises ``TypeError``;
* implement ``critic_loss`` (only when ``needs_critic``), ``generator_loss`` and ``estimate``.

Every loss is a scalar that its owner MINIMISES:

* ``critic_loss(critic, real, fake)``: the model steps the critic on it; pass ``fake``
  detached so that no gradient reaches the generator;
* ``generator_loss(critic, real, fake)``: the model steps the generator on it (``critic`` is
  ``None`` when ``needs_critic`` is False);
* ``estimate(critic, real, fake)``: the divergence value implied by the current critic (or the
  critic-free loss itself), for logging and tests; call it under ``torch.no_grad()``.

Critics that classify data against generator samples share the logistic loss
:func:`logistic_critic_loss` (used by ``jsd`` and ``kl``).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from igm.errors import ConfigError
from igm.config import EmptyConfig

Critic = Callable[[Tensor], Tensor]  # x (N, *event) -> logits (N,) or (N, 1)




def critic_logits(critic: Critic | None, x: Tensor, name: str = "this divergence") -> Tensor:
    """Call ``critic`` on ``x`` (N, *event) and return its logits flattened to shape (N,)."""
    if critic is None:
        raise TypeError(f"divergence '{name}' needs a critic, but critic=None was passed")
    out = critic(x)
    if out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (x.shape[0],):
        raise ValueError(
            f"a critic must return logits of shape (N,) or (N, 1) for N={x.shape[0]} inputs, "
            f"got {tuple(out.shape)}"
        )
    return out


def logistic_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The logistic (binary cross-entropy) critic loss on logits, numerically stable.

    ``E_real softplus(-l) + E_fake softplus(l)`` = ``-E_real log D - E_fake log(1 - D)`` with
    ``D = sigmoid(l)``. Its minimiser is ``l*(x) = log p_data(x) / p_g(x)``, where it equals
    ``log 4 - 2 JSD(p_data, p_g)``.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def full_precision(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run ``fn`` outside autocast, with its low-precision float tensor arguments cast to float32.

    For the parts of a loss that bfloat16 would ruin under ``--precision bf16``: the log-sum-exp
    of the SIG mixture and the gradient norms of penalties. In float32 it changes nothing.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Tensor:
        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        up = [a.float() if isinstance(a, Tensor) and a.dtype in (torch.bfloat16, torch.float16) else a for a in args]
        with torch.autocast(device, enabled=False):
            return fn(*up, **kwargs)

    return wrapper


@full_precision
def r1_penalty(critic: Critic, real: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """``(E_real ‖∇_x l(x)‖², l(real))``: R1's penalty and the critic's logits on ``real``, in float32."""
    with torch.enable_grad():
        x = real.detach().requires_grad_(True)
        real_l = critic_logits(critic, x, name)  # (N,)
        (grad,) = torch.autograd.grad(real_l.sum(), x, create_graph=True)  # (N, *event)
    return grad.flatten(1).pow(2).sum(1).mean(), real_l


def logistic_critic_step(critic: Critic, real: Tensor, fake: Tensor, name: str, r1_weight: float = 0.0) -> Tensor:
    """The logistic critic loss on ``real`` and ``fake``, plus ``r1_weight / 2 · E_real ‖∇_x l(x)‖²``.

    The penalty is R1 (Mescheder et al., 2018): it keeps the critic flat on the data, which
    damps the oscillation of non-saturating GANs around a mixture's modes. Its gradient is built
    with ``create_graph=True`` so that it trains the critic's weights.
    """
    if not r1_weight:
        return logistic_critic_loss(critic_logits(critic, real, name), critic_logits(critic, fake, name))
    penalty, real_l = r1_penalty(critic, real, name)
    return logistic_critic_loss(real_l, critic_logits(critic, fake, name).float()) + 0.5 * r1_weight * penalty


def check_r1(weight: float) -> None:
    if not weight >= 0.0:
        raise ConfigError(f"r1_weight must be >= 0, got {weight}")


def _check_literals(config: Any) -> None:
    """Raise ConfigError when a ``Literal[...]`` field of a dataclass config has another value."""
    try:
        hints = typing.get_type_hints(type(config))
    except (NameError, TypeError):  # a plugin's hints that cannot be resolved: nothing to check
        return
    for f in dataclasses.fields(config):
        hint = hints.get(f.name)
        if typing.get_origin(hint) is typing.Literal:
            allowed = typing.get_args(hint)
            value = getattr(config, f.name)
            if value not in allowed:
                choices = ", ".join(repr(a) for a in allowed)
                raise ConfigError(f"{f.name}={value!r} is not one of {choices}")


class Divergence:
    """A discrepancy between data and a generator, estimated from samples (see module doc)."""

    name: ClassVar[str]
    needs_critic: ClassVar[bool] = True
    Config: ClassVar[type] = EmptyConfig

    def __init__(self, config: Any | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError(f"pass either a config or options to {type(self).__name__}, not both")
        if config is not None and not isinstance(config, self.Config):
            expected = self.Config.__name__
            raise TypeError(f"{type(self).__name__} expects a {expected}, got {config!r}")
        self.config = config if config is not None else self.Config(**options)
        _check_literals(self.config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def critic_loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        """Return the scalar loss the critic MINIMISES (``fake`` should be detached)."""
        if not self.needs_critic:
            raise ConfigError(
                f"divergence '{self.name}' is estimated without a critic and has no critic loss; "
                "use it with a model that has no critic, or choose a critic-based divergence"
            )
        raise NotImplementedError(f"{type(self).__name__} does not implement critic_loss")

    def generator_loss(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Return the scalar loss the generator MINIMISES (``critic`` is None when critic-free)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement generator_loss")

    def estimate(self, critic: Critic | None, real: Tensor, fake: Tensor) -> Tensor:
        """Return the scalar divergence value implied by ``critic`` (critic-free: the loss)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement estimate")
