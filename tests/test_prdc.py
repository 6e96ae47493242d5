"""Precision, recall, density and coverage against answers known in closed form."""

from __future__ import annotations

import pytest
import torch

from igm.metrics.prdc import knn_radii, prdc


def cloud(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) + shift


def test_knn_radii_on_a_line():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 3.0]  # nearest other point
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 5.0]  # second nearest


def test_identical_sets_are_perfect():
    x = cloud(500, 0)
    got = prdc(x, x.clone(), k=5)
    assert got["precision"] == got["recall"] == got["coverage"] == 1.0
    assert got["density"] >= 1.0  # each point lies in its own ball and in its k neighbours' (at least)


def test_disjoint_sets_score_zero():
    got = prdc(cloud(300, 0), cloud(300, 1, shift=100.0), k=5)
    assert got == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_collapsed_generator_has_precision_but_no_recall():
    real = cloud(1000, 0)
    fake = real[:1].repeat(1000, 1)  # every sample is the same real point
    got = prdc(real, fake, k=5)
    assert got["precision"] == 1.0  # a real point's own ball holds it
    assert got["recall"] == pytest.approx(1 / 1000)  # fake radii are 0: only that point is recalled
    assert got["coverage"] <= 10 / 1000  # only the balls around that point hold a sample


def test_same_distribution_gives_density_and_coverage_near_one():
    got = prdc(cloud(2000, 0), cloud(2000, 1), k=5)
    assert got["density"] == pytest.approx(1.0, abs=0.1)
    assert got["precision"] > 0.95 and got["recall"] > 0.95 and got["coverage"] > 0.95


def test_a_blurred_generator_has_recall_but_little_precision():
    real = cloud(2000, 0) * 0.1
    got = prdc(real, cloud(2000, 1) * 1.0, k=5)  # ten times too wide
    assert got["recall"] > 0.9 and got["precision"] < 0.2 and got["density"] < 0.2


def test_the_metric_scores_a_model_on_points():
    from igm.data import open_data
    from igm.metrics import BUILTIN_METRICS
    from igm.testing import build_model

    source = open_data("grid25")
    model = build_model("gan", source.info)
    got = BUILTIN_METRICS["prdc"](model, source, n=400, seed=0)
    assert set(got) == {"precision", "recall", "density", "coverage", "k", "space"} and got["space"] == "data"
    assert 0.0 <= got["precision"] <= 1.0 and 0.0 <= got["recall"] <= 1.0
