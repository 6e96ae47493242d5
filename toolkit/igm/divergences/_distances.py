"""Pairwise squared Euclidean distances without an N×M×D tensor (shared by sig and mmd).

``‖a_i − b_j‖² = ‖a_i‖² + ‖b_j‖² − 2 a_i·b_j``: one (N, M) matmul plus two norms, so the peak
memory is O(N·M + (N+M)·D). Both sides are first shifted by the mean of ``b`` (distances do not
change) to reduce the cancellation error of the expansion, and the result is clamped at 0.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor


def flatten_events(x: Tensor) -> Tensor:
    """(N, *event) -> (N, D) with D the product of the event dims."""
    return rearrange(x, "n ... -> n (...)")


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """Squared distances between the rows of ``a`` (N, D) and ``b`` (M, D): shape (N, M)."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    centre = b.mean(dim=0, keepdim=True)  # (1, D)
    a, b = a - centre, b - centre
    a2 = a.pow(2).sum(dim=1, keepdim=True)  # (N, 1)
    b2 = b.pow(2).sum(dim=1)  # (M,)
    return (a2 + b2 - 2.0 * (a @ b.T)).clamp_min(0.0)  # (N, M)
