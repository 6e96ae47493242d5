"""igm.logexp: torch.logsumexp's value to the bit, its gradient to below ``tiny``, without exp's slow path."""

from __future__ import annotations

import math

import pytest
import torch

from igm import log_mean_exp, logsumexp
from igm.logexp import exp_floor, floored_exp


def spread(scale: float, shape: tuple[int, ...] = (64, 300), dtype: torch.dtype = torch.float32):
    """Log-terms from 0 down to −scale: a sharp kernel's log-densities when scale is large."""
    g = torch.Generator().manual_seed(int(scale))
    return (-scale * torch.rand(shape, generator=g, dtype=torch.float64) ** 2).to(dtype)


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e3, 1e5])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_value_is_torchs_to_the_bit(scale: float, dim: int) -> None:
    x = spread(scale)
    assert torch.equal(logsumexp(x, dim), torch.logsumexp(x, dim))


def test_value_matches_float64_where_torch_underflows() -> None:
    x = spread(1e4)
    want = torch.logsumexp(x.double(), 1)
    torch.testing.assert_close(logsumexp(x, 1).double(), want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_is_torchs_but_for_terms_under_tiny(dtype: torch.dtype) -> None:
    x = spread(3e3, dtype=dtype).requires_grad_()
    w = torch.linspace(-1, 2, x.shape[0], dtype=dtype)  # an uneven upstream gradient
    (ours,) = torch.autograd.grad((logsumexp(x, 1) * w).sum(), x)
    (theirs,) = torch.autograd.grad((torch.logsumexp(x, 1) * w).sum(), x)
    normal = theirs.abs() >= torch.finfo(dtype).tiny * math.e * 2
    assert torch.equal(ours[normal], theirs[normal])
    assert ours[~normal].abs().max() <= torch.finfo(dtype).tiny * math.e * 2
    assert (ours[x.detach() - x.detach().amax(1, keepdim=True) < exp_floor(dtype) - 10] == 0).all()


def test_infinities_and_nan_as_torch() -> None:
    inf = math.inf
    x = torch.tensor([[0.0, -inf, -1.0], [-inf, -inf, -inf], [inf, 0.0, 1.0], [math.nan, 0.0, 0.0]])
    torch.testing.assert_close(logsumexp(x, 1), torch.logsumexp(x, 1), equal_nan=True)


def test_second_derivative_and_log_mean_exp() -> None:
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: logsumexp(t, 1), (x,))
    assert torch.autograd.gradgradcheck(lambda t: logsumexp(t, 0), (x,))
    torch.testing.assert_close(log_mean_exp(x, 1), torch.logsumexp(x, 1) - math.log(6))


def test_exp_floor_is_a_normal_float_clear_of_the_edge() -> None:
    for dtype in (torch.float32, torch.float64):
        floor = torch.tensor(exp_floor(dtype), dtype=dtype)
        assert floor.exp() >= torch.finfo(dtype).tiny
    assert exp_floor(torch.float32) == pytest.approx(-86.34, abs=0.01)


def test_floored_exp_is_torchs_exp_but_zero_under_the_floor() -> None:
    x = torch.linspace(-120.0, 5.0, 2001).requires_grad_()
    ours = floored_exp(x)
    theirs = torch.exp(x)
    normal = x.detach() >= exp_floor(torch.float32)
    assert torch.equal(ours[normal], theirs[normal])
    assert (ours[~normal] == 0).all() and (theirs[~normal] < torch.finfo(torch.float32).tiny * math.e).all()
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    (g_ours,) = torch.autograd.grad((ours * w).sum(), x)
    (g_theirs,) = torch.autograd.grad((theirs * w).sum(), x)
    assert torch.equal(g_ours[normal], g_theirs[normal]) and (g_ours[~normal] == 0).all()
    y = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(floored_exp, (y,)) and torch.autograd.gradgradcheck(floored_exp, (y,))


def test_empty_reduction_as_torch() -> None:
    x = torch.zeros(3, 0)
    assert torch.equal(logsumexp(x, 1), torch.logsumexp(x, 1))
