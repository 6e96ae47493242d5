"""igm-lsgan's own tests: the igm.testing contract, and what the plugin adds on top of it.

Run them where the plugin is installed: ``pip install -e '.[test]' && python -m pytest``.
"""

from __future__ import annotations

import math

import pytest
import torch

import igm
from igm import DataError, get_registry, open_data
from igm.testing import build_model, check_model, toy_images, toy_points
from igm_lsgan.divergences import Hinge, LeastSquares
from igm_lsgan.metric import energy_distance


def test_the_plugin_registers_everything_under_its_entry_point():
    registry = get_registry()
    for kind, name in [("models", "lsgan"), ("divergences", "least-squares"), ("divergences", "hinge"),
                       ("datasets", "moons"), ("metrics", "energy")]:
        assert registry.component(kind, name).plugin.name == "lsgan"


@pytest.mark.parametrize("divergence", ["least-squares", "hinge"])
def test_contract_on_points(tmp_path, divergence):
    model = check_model("lsgan", toy_points(), tmp_path, overrides={"divergence": divergence, "lr_d": "0.001"})
    assert model.divergence.name == divergence  # check_model trains the model built with the overrides


def test_contract_on_images(tmp_path):
    check_model("lsgan", toy_images(), tmp_path, overrides={"g_width": "0.5"})


def test_the_gan_family_can_use_these_divergences_by_name():
    data = toy_points()
    model = build_model("lsgan", data.info, {"divergence": "hinge"})
    assert isinstance(model.divergence, Hinge)


def critic_of(table: dict[float, float]):
    """A critic that returns table[x] for 1-D points x (N, 1)."""
    return lambda x: torch.tensor([table[float(v)] for v in x[:, 0]])


def test_estimates_at_the_optimal_critic_are_the_closed_forms():
    # p puts 3/4 on point 0 and 1/4 on point 1; q the reverse.
    real = torch.tensor([[0.0]] * 3 + [[1.0]])
    fake = torch.tensor([[0.0]] + [[1.0]] * 3)
    p, q = {0.0: 0.75, 1.0: 0.25}, {0.0: 0.25, 1.0: 0.75}
    ls_star = critic_of({x: p[x] / (p[x] + q[x]) for x in p})
    triangular = sum((p[x] - q[x]) ** 2 / (p[x] + q[x]) for x in p)
    assert math.isclose(float(LeastSquares().estimate(ls_star, real, fake)), triangular / 8, rel_tol=1e-6)
    hinge_star = critic_of({x: math.copysign(1.0, p[x] - q[x]) for x in p})
    tv = 0.5 * sum(abs(p[x] - q[x]) for x in p)
    assert math.isclose(float(Hinge().estimate(hinge_star, real, fake)), tv, rel_tol=1e-6)


def test_moons_source_and_its_one_line_error():
    source = open_data("moons:0.1", seed=3)
    x, y = source.split("train")
    assert x.shape == (20_000, 2) and set(y.unique().tolist()) == {0, 1}
    assert source.info.extra == {"noise": 0.1}
    torch.testing.assert_close(open_data("moons:0.1", seed=3).split("train")[0], x)  # seeded
    with pytest.raises(DataError, match="noise level"):
        open_data("moons:abc")


def test_energy_metric_is_small_for_the_data_itself():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    y = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    assert abs(energy_distance(x, y)) < 0.05 < energy_distance(x, y + 1.0)
    model = build_model("lsgan", toy_points().info)
    scores = get_registry().get("metrics", "energy")(model, toy_points(), n=200)
    assert scores["energy"] > 0 and scores["samples"] == 200


def test_checkpoint_names_this_distribution(tmp_path):
    model = build_model("lsgan", toy_points().info)
    path = igm.save(model, tmp_path / "m.safetensors")
    from igm import read_metadata

    assert read_metadata(path)["igm.plugin"] == "igm-lsgan"
