"""Products with 0/1 matrices as sums of rows, not multiply-adds.

An RBM's samples are bits, and binarized images are mostly zeros (binarized MNIST: about 13%
ones). For a 0/1 matrix ``x`` (n, V), ``x @ T`` with ``T`` (V, k) is, row by row, the sum of the
rows of ``T`` where ``x`` has its ones, and ``xᵀ @ S`` with ``S`` (n, k) is, column by column, the
sum of the rows of ``S`` where that column has its ones. :class:`Bits` keeps the positions of the
ones, by row (and by column, made on first use), and ``torch.nn.functional.embedding_bag`` does
the sums: about ``density ×`` the arithmetic of the dense product, plus one pass to find the
ones. :meth:`Bits.of` declines (None) when ``x`` is not 0/1 or is fuller than ``max_density``,
and the caller keeps the BLAS product.

The sums run in another order than BLAS's: results agree with the dense product to rounding,
not bit for bit. Nothing here is differentiated by autograd (the RBM's backward pass is its own).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor

MAX_DENSITY = 0.25  # above this share of ones, finding them costs more than BLAS's dense product saves


def _groups(mask: Tensor) -> tuple[Tensor, Tensor]:
    """For a bool matrix (n, m): the column index of every True in row-major order, and where each row starts."""
    counts = mask.sum(1)  # (n,)
    offsets = torch.zeros_like(counts)
    torch.cumsum(counts[:-1], 0, out=offsets[1:])
    return mask.nonzero(as_tuple=True)[1], offsets


class Bits:
    """The ones of a 0/1 matrix ``x`` (n, V), for the products ``x @ T`` and ``xᵀ @ S``."""

    def __init__(self, mask: Tensor, cols: Tensor | None = None, offsets: Tensor | None = None) -> None:
        """``mask`` is ``x.bool()`` (n, V), ``cols`` and ``offsets`` its groups when known; use :meth:`of`."""
        self.mask = mask
        if cols is None or offsets is None:
            cols, offsets = _groups(mask)
        self.cols, self.offsets = cols, offsets  # the ones' columns, row after row; where each row starts
        self._by_column: tuple[Tensor, Tensor] | None = None

    @classmethod
    def of(cls, x: Tensor, max_density: float = MAX_DENSITY, binary: bool = False) -> Bits | None:
        """The ones of ``x`` (n, V); None when ``x`` has a value other than 0 and 1 or more ones than
        ``max_density`` of its entries. ``binary=True``: the caller knows ``x`` is 0/1 (samples)."""
        if x.dim() != 2 or not x.is_floating_point() or x.numel() == 0:
            return None
        mask = x.bool()
        if mask.sum() > max_density * x.numel():
            return None
        if not binary and not torch.equal(mask.to(x.dtype), x):
            return None
        return cls(mask)

    @classmethod
    def stack(cls, parts: list[Bits | None]) -> Bits | None:
        """The ones of the rows of every part, one part after the other (None if a part is None)."""
        present = [p for p in parts if p is not None]
        if len(present) < len(parts):
            return None
        starts, total = [], 0
        for p in present:
            starts.append(total)
            total += p.cols.numel()
        return cls(
            torch.cat([p.mask for p in present]),
            torch.cat([p.cols for p in present]),
            torch.cat([p.offsets + start for p, start in zip(present, starts)]),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]

    def matmul(self, table: Tensor) -> Tensor:
        """``x @ table`` for ``table`` (V, k) -> (n, k)."""
        return nnf.embedding_bag(self.cols, table.contiguous(), self.offsets, mode="sum")

    def t_matmul(self, s: Tensor) -> Tensor:
        """``xᵀ @ s`` for ``s`` (n, k) -> (V, k)."""
        if self._by_column is None:
            self._by_column = _groups(self.mask.t().contiguous())  # the ones' rows, column after column
        rows, offsets = self._by_column
        return nnf.embedding_bag(rows, s.contiguous(), offsets, mode="sum")
