"""The `modes` metric (BENCHMARKS.md Q1) against known answers."""

from __future__ import annotations

import math

import pytest
import torch

from igm.data import GRID25, RING8, open_data
from igm.metrics import mode_coverage
from igm.testing import build_model


def test_exact_mixture_samples_cover_every_mode():
    for mixture in (GRID25, RING8):
        x = mixture.sample(50_000, torch.Generator().manual_seed(0))
        out = mode_coverage(x, torch.tensor(mixture.means), mixture.std)
        k = len(mixture.means)
        assert out["modes"] == k and out["num_modes"] == k and out["modes_pacgan"] == k
        assert abs(out["high_quality"] - (1 - math.exp(-4.5))) < 0.002
        assert out["kl"] < 0.002


def test_five_modes_only_gives_kl_log_five():
    means = torch.tensor(GRID25.means)
    gen = torch.Generator().manual_seed(1)
    chosen = means[torch.arange(50_000) % 5]
    x = chosen + GRID25.std * torch.randn(50_000, 2, generator=gen)
    out = mode_coverage(x, means, GRID25.std)
    assert out["modes"] == 5
    assert abs(out["kl"] - math.log(5)) < 1e-6
    far = mode_coverage(torch.full((100, 2), 1.0), means, GRID25.std)
    assert far["high_quality"] == 0.0 and far["modes"] == 0 and far["kl"] is None


def test_metric_runs_on_a_model_through_the_registry():
    from igm.registry import get_registry

    data = open_data("grid25", 0)
    model = build_model("gan", data.info)
    out = get_registry().get("metrics", "modes")(model, data, n=2000, seed=0)
    assert out["samples"] == 2000 and 0 <= out["high_quality"] <= 1


def test_modes_counts_against_all_samples_and_says_why_when_pacgan_disagrees():
    means = torch.tensor(GRID25.means)
    gen = torch.Generator().manual_seed(2)
    near = means.repeat(40, 1) + GRID25.std * 0.5 * torch.randn(1000, 2, generator=gen)  # 40 per mode, all HQ
    far = torch.full((49_000, 2), 100.0)
    out = mode_coverage(torch.cat([near, far]), means, GRID25.std)
    assert out["min_count"] == 1000.0  # half the fair share of all 50,000 samples (the paper's rule)
    assert out["modes"] == 0 and out["modes_pacgan"] == 25 and out["high_quality"] == pytest.approx(0.02)
    assert out["note"] == (
        "25 modes hold high-quality samples but only 0 hold more than 1000 "
        "(half their fair share of all 50000 samples); 2.0% of samples lie within 3 std of a mean"
    )
    # 1,001 high-quality samples in each of 5 modes and nothing else near: 5 modes, whatever the rest
    five = means[:5].repeat(1001, 1) + GRID25.std * 0.5 * torch.randn(5005, 2, generator=gen)
    out = mode_coverage(torch.cat([five, torch.full((44_995, 2), 100.0)]), means, GRID25.std)
    assert out["modes"] == 5 and "note" not in out
