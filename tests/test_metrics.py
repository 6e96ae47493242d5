"""The `modes` metric (BENCHMARKS.md Q1) against known answers."""

from __future__ import annotations

import math

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
