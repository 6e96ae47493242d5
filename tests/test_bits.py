"""Products with 0/1 matrices as sums of rows (igm.bits) against the dense products in float64."""

from __future__ import annotations

import pytest
import torch

from igm.bits import Bits


def bits_matrix(n: int, m: int, density: float, seed: int) -> torch.Tensor:
    x = (torch.rand(n, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < density).double()
    x[1] = 0.0  # an empty row
    x[:, 2] = 0.0  # an empty column
    x[3, 4] = 1.0
    return x


def test_products_equal_the_dense_products():
    x = bits_matrix(12, 9, 0.2, seed=0)
    g = torch.Generator().manual_seed(1)
    table, s = torch.randn(9, 5, generator=g, dtype=torch.float64), torch.randn(12, 4, generator=g, dtype=torch.float64)
    bits = Bits.of(x)
    assert bits is not None and bits.shape == (12, 9)
    torch.testing.assert_close(bits.matmul(table), x @ table, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bits.t_matmul(s), x.T @ s, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bits.matmul(table.T.contiguous().T), x @ table, rtol=1e-12, atol=1e-12)  # strided table
    assert torch.equal(bits.matmul(table)[1], torch.zeros(5, dtype=torch.float64))  # the empty row sums nothing
    assert torch.equal(bits.t_matmul(s)[2], torch.zeros(4, dtype=torch.float64))  # nor the empty column


def test_stacked_parts_are_the_ones_of_the_stacked_rows():
    top, bottom = bits_matrix(5, 7, 0.2, seed=2), bits_matrix(4, 7, 0.2, seed=3)
    both = Bits.stack([Bits.of(top), Bits.of(bottom, binary=True)])
    assert both is not None and both.shape == (9, 7)
    x = torch.cat([top, bottom])
    g = torch.Generator().manual_seed(4)
    table, s = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(9, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(both.matmul(table), x @ table, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(both.t_matmul(s), x.T @ s, rtol=1e-12, atol=1e-12)
    assert Bits.stack([Bits.of(top), None]) is None


@pytest.mark.parametrize(
    ("case", "x"),
    [
        ("a value between 0 and 1", torch.tensor([[0.0, 0.5], [1.0, 0.0], [0.0, 0.0]])),
        ("a negative value", torch.tensor([[0.0, -1.0], [0.0, 0.0], [0.0, 0.0]])),
        ("a NaN", torch.tensor([[0.0, float("nan")], [0.0, 0.0], [0.0, 0.0]])),
        ("too many ones", torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])),
        ("not a matrix", torch.tensor([0.0, 1.0, 0.0, 0.0])),
        ("integers", torch.tensor([[0, 1], [0, 0], [0, 0]])),
    ],
)
def test_declines_what_is_not_a_sparse_float_0_1_matrix(case, x):
    assert Bits.of(x, max_density=0.25) is None, case


def test_density_bound_is_inclusive_and_caller_knowledge_skips_the_check():
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # a quarter ones
    assert Bits.of(x, max_density=0.25) is not None
    assert Bits.of(x, max_density=0.2) is None
    half = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    assert Bits.of(half) is None and Bits.of(half, binary=True) is not None  # binary=True trusts the caller
