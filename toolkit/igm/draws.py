"""Seeded draws on any device: one place for the ``generator``-or-global-RNG pattern.

Every random draw a family makes takes an optional seeded ``torch.Generator``. The generator
may live on another device than the tensors that use the draw (the trainer's is on the CPU
unless the data is on the device), so a seeded draw is made on the generator's device and moved;
without one, the global RNG draws directly where it is needed. A seeded draw never depends on
the device it is used on, which is what keeps a CPU run and its resume bit-identical.
"""

from __future__ import annotations

import torch
from torch import Tensor


def randn(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype | None = None
) -> Tensor:
    """Standard normal draws of ``shape`` on ``device`` (in ``dtype``), from ``generator`` or the global RNG."""
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=generator.device).to(device=device, dtype=dtype)


def rand(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype | None = None
) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` on ``device`` (in ``dtype``), from ``generator`` or the global RNG."""
    if generator is None:
        return torch.rand(shape, device=device, dtype=dtype)
    return torch.rand(shape, generator=generator, device=generator.device).to(device=device, dtype=dtype)


def randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``n`` integers uniform in ``0..high-1`` on ``device``, from ``generator`` or the global RNG."""
    if generator is None:
        return torch.randint(high, (n,), device=device)
    return torch.randint(high, (n,), generator=generator, device=generator.device).to(device)
