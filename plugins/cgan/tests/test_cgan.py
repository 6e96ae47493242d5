"""The cGAN plugin: contract on labelled points and images, label-honouring samples, the per-class grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import igm
from igm import ConfigError, DataInfo, RunConfig, Trainer, class_samples, save_class_grid
from igm.cli import main
from igm.testing import build_model, check_model, toy_images, toy_points


def test_contract_on_points(tmp_path):
    model = check_model("cgan", toy_points(), tmp_path, overrides={"lr_g": "0.002"})
    assert model.config.conditional and model.generator.num_classes == 4


def test_contract_on_images(tmp_path):
    model = check_model("cgan", toy_images(), tmp_path, overrides={"g_width": "0.5"})
    assert model.config.network == "dcgan" and model.critic.num_classes == 10


def test_unlabelled_data_is_refused():
    info = DataInfo("grid25", (2,), None, None, "points")
    with pytest.raises(ConfigError, match="labelled"):
        build_model("cgan", info)


def test_samples_honour_their_labels(tmp_path):
    """Trained briefly on 4 labelled, well separated modes, samples of label k land nearest mode k."""
    data = toy_points(n=2048)
    torch.manual_seed(0)
    model = build_model("cgan", data.info, {"lr_g": "0.002", "lr_d": "0.002"}, seed=0)
    run = RunConfig(steps=400, batch_size=64, seed=0, device="cpu", log_every=1000, sample_every=0, checkpoint_every=0)
    Trainer(model, data, run, None, progress=False).fit()
    model.eval()
    x, labels = class_samples(model.generator, 200, torch.Generator().manual_seed(0))
    means = torch.tensor(data.info.extra["means"])
    nearest = torch.cdist(x, means).argmin(dim=1)
    accuracy = (nearest == labels).float().mean().item()
    assert accuracy > 0.9, f"only {accuracy:.2f} of the samples land at their label's mode"
    path = save_class_grid(model.generator, 50, "points", tmp_path / "grid.png", reference=means)
    assert path.exists()


def test_per_class_image_grid_has_one_row_per_class(tmp_path):
    from PIL import Image

    model = build_model("cgan", toy_images().info, {"g_width": "0.5"})
    model.eval()
    path = save_class_grid(model.generator, 5, "image", tmp_path / "grid.png", value_range=(0.0, 1.0))
    img = Image.open(path)
    tile = 8 * 4 + 2  # 8 px upscaled x4 plus the 2 px padding
    assert img.size == (5 * tile + 2, 10 * tile + 2)


def test_budget_is_shorter_than_gans_on_grid25_the_same_on_ring8_and_longer_on_images():
    from igm import get_registry, open_data

    cgan, gan = (get_registry().get("models", name) for name in ("cgan", "gan"))
    grid25, ring8 = open_data("grid25").info, open_data("ring8").info
    assert cgan.run_defaults(grid25) == {**gan.run_defaults(grid25), "steps": 8_000}
    ring8_budget = {"steps": 4_000, "batch_size": 256, "lr_decay": "cosine"}
    assert cgan.run_defaults(ring8) == gan.run_defaults(ring8) == ring8_budget
    images = toy_images().info
    assert cgan.run_defaults(images) == {**gan.run_defaults(images), "steps": 12_000} and gan.run_defaults(images)["steps"] == 10_000


def test_on_images_the_critic_gets_the_adversarial_recipes_r1_penalty():
    """Known answer: jsd on images resolves R1 γ = 1 (igm.adversarial.DIVERGENCE_DEFAULTS); points keep none."""
    assert build_model("cgan", toy_images().info, {"g_width": "0.5"}).divergence.config.r1_weight == 1.0
    assert build_model("cgan", toy_points().info).divergence.config.r1_weight == 0.0


def test_on_images_the_critic_takes_labels_by_projection_unless_told_otherwise(tmp_path):
    """``d_projection`` is on by default for a conditional DCGAN critic: no label planes, a class embedding that
    saves and loads; ``false`` gives the label-plane critic; without labels or on an MLP it is refused."""
    model = check_model("cgan", toy_images(), tmp_path, overrides={"g_width": "0.5"})
    assert model.config.d_projection is True
    assert model.critic.embed is not None and model.critic.embed.weight.shape[1] == 10
    assert model.critic.net[0].in_channels == 1  # the image's channel only
    planes = build_model("cgan", toy_images().info, {"d_projection": "false"}).critic
    assert planes.embed is None and planes.net[0].in_channels == 1 + 10
    assert build_model("gan", toy_images().info, {"conditional": "true"}).critic.embed is not None
    assert build_model("cgan", toy_points().info).config.d_projection is False  # an MLP critic: label inputs
    with pytest.raises(ConfigError, match="d_projection=True needs labels"):
        build_model("gan", toy_images().info, {"d_projection": "true"})
    with pytest.raises(ConfigError, match="d_projection.*network=mlp"):
        build_model("cgan", toy_points().info, {"d_projection": "true"})


def class_norms(generator: torch.nn.Module) -> list[torch.nn.Module]:
    """The generator's class-conditional BatchNorms: those with a label -> gain map (igm.nn.dcgan.ClassBatchNorm2d)."""
    return [m for m in generator.modules() if isinstance(getattr(m, "gain", None), torch.nn.Linear)]


def test_on_images_the_generator_takes_labels_in_its_batchnorms_and_users_sample_its_average(tmp_path):
    """A conditional DCGAN's defaults: every BatchNorm of the generator takes the label's gain and bias
    (``g_class_norm``) and users sample an average of its weights (``ema`` 0.999), both saved and loaded; an
    unconditional one, or one on points, gets neither; the user's choice wins; class norms without labels or on an
    MLP are refused."""
    model = check_model("cgan", toy_images(), tmp_path, overrides={"g_width": "0.5"})
    assert model.config.g_class_norm is True and model.config.ema == 0.999
    norms, plain = class_norms(model.generator), build_model("cgan", toy_images().info, {"g_class_norm": "false"})
    batchnorms = [m for m in plain.generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == len(batchnorms) >= 2 and norms[0].gain.in_features == 10  # every one, by the label
    assert len(class_norms(model.online)) == len(norms)  # the trained generator and its average alike
    assert not [m for m in model.generator.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.affine]
    loaded = igm.load(igm.save(model, tmp_path / "cbn.safetensors"))
    assert loaded.config.g_class_norm is True and loaded.config.ema == 0.999 and class_norms(loaded.generator)
    for settings, class_norm, ema in [
        ({"g_class_norm": "false", "ema": "0"}, False, 0.0),  # the user's choice
        ({"ema": "0.99"}, True, 0.99),
    ]:
        config = build_model("cgan", toy_images().info, settings).config
        assert (config.g_class_norm, config.ema) == (class_norm, ema)
    plain = build_model("gan", toy_images().info)
    assert plain.config.g_class_norm is False and plain.config.ema == 0.0 and not class_norms(plain.generator)
    assert build_model("cgan", toy_points().info).config.ema == 0.0
    with pytest.raises(ConfigError, match="g_class_norm=True needs labels"):
        build_model("gan", toy_images().info, {"g_class_norm": "true"})
    with pytest.raises(ConfigError, match="g_class_norm.*network=mlp"):
        build_model("cgan", toy_points().info, {"g_class_norm": "true"})


PREDATING = ("d_projection", "g_class_norm")  # the label paths a file from before them does not name


def predating_projection(path: Path, nested: str | None = None) -> None:
    """Rewrite a checkpoint as igm wrote it before ``d_projection`` and ``g_class_norm`` existed: its stored config
    (under the metadata key ``nested`` for a trainer file) names neither (it names its ``ema``, which existed)."""

    def older(meta: dict[str, str]) -> dict[str, str]:
        config = json.loads(meta["igm.config"])
        for name in PREDATING:
            del config[name]
        return {**meta, "igm.config": json.dumps(config)}

    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    meta = older(meta) if nested is None else {**meta, nested: json.dumps(older(json.loads(meta[nested])))}
    save_file(load_file(path), str(path), metadata=meta)


def test_a_checkpoint_from_before_the_projection_critic_loads_with_its_label_planes(tmp_path):
    """Files written before ``d_projection`` existed do not name it: they hold a label-plane critic, and load as one."""
    old = {"d_projection": "false", "g_class_norm": "false", "ema": "0", "g_width": "0.5"}
    model = build_model("cgan", toy_images().info, old)
    path = igm.save(model, tmp_path / "old.safetensors")
    predating_projection(path)
    loaded = igm.load(path)
    assert loaded.critic.embed is None and loaded.config.d_projection is False
    assert loaded.config.g_class_norm is False and loaded.config.ema == 0.0 and not class_norms(loaded.generator)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    path = igm.save(build_model("cgan", toy_points().info), tmp_path / "points.safetensors")
    predating_projection(path)
    assert igm.load(path).config.d_projection is False  # an MLP file's absent field is off, as it was


@pytest.mark.parametrize("data", ["digits", "grid25"])
def test_a_run_from_before_the_projection_critic_resumes_as_it_was(data, tmp_path, monkeypatch):
    """A run directory whose config.toml and checkpoints predate ``d_projection`` continues with its own critic
    (label planes on images, label inputs on points) under ``igm fit --resume``."""
    monkeypatch.chdir(tmp_path)

    def fit(*args: str) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["fit", *args])
        assert exit_.value.code == 0

    old = ["--set", "d_projection=false", "--set", "g_class_norm=false", "--set", "ema=0"]
    fit("cgan", "--data", data, "--steps", "2", "--batch-size", "16", *old, "--out", "run")
    run = tmp_path / "run"
    toml = (run / "config.toml").read_text()
    assert "d_projection = false\n" in toml and "g_class_norm = false\n" in toml and "ema = 0.0\n" in toml
    (run / "config.toml").write_text(toml.replace("d_projection = false\n", "").replace("g_class_norm = false\n", ""))
    predating_projection(run / "model.safetensors")
    predating_projection(run / "trainer.safetensors", nested="igm.model_checkpoint")
    fit("--resume", "--out", "run", "--steps", "3")
    model = igm.load(run / "model.safetensors")
    assert model.config.d_projection is False and getattr(model.critic, "embed", None) is None
    assert model.config.g_class_norm is False and model.config.ema == 0.0 and not class_norms(model.generator)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]).get("step") == 3
