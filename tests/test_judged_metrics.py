"""Classifier metrics on the data's own images (issue 15): any size, gappy labels, real references,
every check before the judge trains. The data is drawn here: class-coded blobs that a judge
learns in a few seconds; the cache goes to tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from igm.data import open_data
from igm.errors import ConfigError, DataError
from igm.generators import Generator
from igm.metrics import BUILTIN_METRICS, JudgeConfig, judged_splits
from igm.metrics import classifier as clf
from igm.metrics.judge import JudgeNet, judge_problem
from igm.models import EmptyConfig, Model
from igm.testing import threads

GAPPY = [0, 1, 3, 4, 5, 7, 8, 9]
QUICK = JudgeConfig(epochs=2, batch_size=32)


@pytest.fixture(autouse=True)
def quick(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IGM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "judged-cache"))
    monkeypatch.setattr(clf, "DEFAULT_JUDGE", QUICK)
    monkeypatch.setattr(clf, "MIN_STEPS", 150)
    with threads(1):
        yield


def blobs(n: int, side: int, channels: int, labels: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, C, side, side): noise plus a bright square whose place encodes the label."""
    rng = np.random.default_rng(seed)
    y = np.array(labels)[rng.integers(0, len(labels), n)]
    x = rng.integers(0, 60, (n, channels, side, side))
    cell = side // 4
    for i, label in enumerate(labels):
        r, c = divmod(i, 4)
        x[y == label, :, r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = 255
    return x.astype(np.uint8), y


@pytest.fixture(scope="module")
def gappy_npz(tmp_path_factory) -> str:
    """8×8 one-channel images in 8 classes labelled 0, 1, 3, 4, 5, 7, 8, 9, with a test split."""
    x, y = blobs(600, 8, 1, GAPPY, 0)
    xt, yt = blobs(200, 8, 1, GAPPY, 1)
    path = tmp_path_factory.mktemp("gappy") / "gappy.npz"
    np.savez(path, x=x, y=y, x_test=xt, y_test=yt)
    return f"npz:{path}"


class RealImages(Generator):
    """A 'conditional generator' drawing the data's own training images, of the asked class or any."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None, honest: bool = True) -> None:
        super().__init__(tuple(x.shape[1:]), num_classes=num_classes)
        self.x, self.y, self.honest = x, y, honest

    def sample(self, n, labels=None, generator=None):
        if self.num_classes is None or not self.honest:
            return self.x[torch.randint(len(self.x), (n,), generator=generator)]
        labels = self.labels_for(n, labels, generator)
        by_class = [torch.nonzero(self.y == k)[:, 0] for k in range(self.num_classes)]
        picks = [by_class[k][torch.randint(len(by_class[k]), (1,), generator=generator)] for k in labels.tolist()]
        return self.x[torch.cat(picks)]


def model_of(source, conditional: bool = True, honest: bool = True) -> Model:
    x, y = source.split("train")
    model = Model(EmptyConfig(), source.info)
    model.generator = RealImages(x, y, source.info.num_classes if conditional else None, honest)
    return model


def test_label_accuracy_on_gappy_labels_reports_the_users_classes(gappy_npz: str) -> None:
    source = open_data(gappy_npz)
    assert source.info.num_classes == 8
    out = BUILTIN_METRICS["label-accuracy"](model_of(source), source, n=400)
    assert out["judge_accuracy"] > 0.95
    assert out["label_accuracy"] > 0.95
    assert [k for k in out if k.startswith("class ")] == [f"class {v}" for v in GAPPY]  # never class 2 or 6
    assert all(out[f"class {v}"] > 0.85 for v in GAPPY)
    liar = BUILTIN_METRICS["label-accuracy"](model_of(source, honest=False), source, n=400)
    assert liar["label_accuracy"] == pytest.approx(1 / 8, abs=0.06)


def test_scores_stand_beside_those_of_real_data(gappy_npz: str) -> None:
    source = open_data(gappy_npz)
    real = model_of(source, conditional=False)
    inception = BUILTIN_METRICS["classifier-is"](real, source, n=400)
    assert inception["real_inception_score"] > 6  # 8 balanced, well separated classes
    assert inception["inception_score"] == pytest.approx(inception["real_inception_score"], rel=0.1)
    fid = BUILTIN_METRICS["classifier-fid"](real, source, n=400)
    assert fid["real_fid"] >= 0 and fid["fid"] < 3 * fid["real_fid"] + 1
    one = model_of(source, conditional=False)
    one.generator.x = one.generator.x[:1]  # a single image, repeated
    assert BUILTIN_METRICS["classifier-is"](one, source, n=400)["inception_score"] == pytest.approx(1.0)
    assert BUILTIN_METRICS["classifier-fid"](one, source, n=400)["fid"] > 10 * fid["real_fid"]


def test_rgb_32_pixel_images_without_a_test_split_are_judged(tmp_path: Path) -> None:
    x, y = blobs(300, 32, 3, [0, 1, 2, 3], 2)
    np.savez(tmp_path / "rgb.npz", x=x, y=y)
    source = open_data(f"npz:{tmp_path / 'rgb.npz'}")
    assert all(BUILTIN_METRICS[m].applies_to(source.info) for m in ("classifier-is", "classifier-fid", "label-accuracy"))
    split = judged_splits(source, "classifier-is")
    assert split.held_out and split.x_test.shape == (50, 3, 32, 32) and split.x_train.shape[0] == 250
    out = BUILTIN_METRICS["classifier-is"](model_of(source, conditional=False), source, n=200)
    assert out["judge_accuracy"] > 0.9 and out["real_inception_score"] > 3


def test_the_judge_works_at_any_image_size() -> None:
    for shape in ((1, 8, 8), (3, 32, 32), (1, 28, 28), (2, 64, 48), (1, 4, 9)):
        net = JudgeNet(8, 5, shape)
        assert net(torch.zeros(2, *shape)).shape == (2, 5) and net.body(torch.zeros(2, *shape)).shape == (2, 128)
    assert judge_problem((1, 3, 8)) == "the judge classifies images of at least 4x4 pixels; these are 3x8"
    assert judge_problem((5,)) is not None and judge_problem((1, 4, 4)) is None


def never_trains(*args, **kwargs):
    raise AssertionError("the judge trained before the checks")


def test_incompatible_data_fails_before_the_judge_trains(gappy_npz: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(clf, "image_judge", never_trains)
    source = open_data(gappy_npz)
    big, by = blobs(60, 28, 1, GAPPY, 3)
    np.savez(tmp_path / "big.npz", x=big, y=by, x_test=big, y_test=by)
    other = open_data(f"npz:{tmp_path / 'big.npz'}")
    for metric in ("classifier-is", "classifier-fid", "label-accuracy"):
        with pytest.raises(DataError, match=r"draws examples of shape \(1, 8, 8\), but .*big.npz' holds \(1, 28, 28\): .*--data npz:"):
            BUILTIN_METRICS[metric](model_of(source), other, n=10)
    np.savez(tmp_path / "plain.npz", x=big)
    plain = open_data(f"npz:{tmp_path / 'plain.npz'}")
    with pytest.raises(DataError, match="is unlabelled: the judge needs two or more classes"):
        BUILTIN_METRICS["classifier-is"](model_of(plain, conditional=False), plain, n=10)
    grid = open_data("grid25")
    with pytest.raises(DataError, match="holds points, not images"):
        BUILTIN_METRICS["classifier-fid"](model_of(grid, conditional=False), grid, n=10)
    with pytest.raises(ConfigError, match="needs a conditional model"):
        BUILTIN_METRICS["label-accuracy"](model_of(source, conditional=False), source, n=10)
    fewer = open_data(gappy_npz)
    fewer.info = type(fewer.info)(**{**fewer.info.__dict__, "class_values": (0, 1, 2, 3, 4, 5, 6, 7)})
    with pytest.raises(DataError, match=r"draws 8 classes \(0, 1, 3, 4, 5, 7, 8, 9\) but .* has 8 \(0, 1, 2"):
        BUILTIN_METRICS["label-accuracy"](model_of(source), fewer, n=10)


def test_the_progress_bar_names_the_data(gappy_npz: str, capsys) -> None:
    x, y = blobs(100, 8, 1, [0, 1], 5)
    from igm.metrics.judge import image_judge

    image_judge(torch.from_numpy(x).float() / 255, torch.from_numpy(y), torch.from_numpy(x).float() / 255,
                torch.from_numpy(y), JudgeConfig(epochs=1, batch_size=50), name="npz:mine.npz")
    err = capsys.readouterr().err
    assert "train judge on npz:mine.npz" in err and "mnist" not in err


def test_cgan_on_gappy_labels_end_to_end(gappy_npz: str, tmp_path: Path) -> None:
    """The README's path on a user's own gappy-labelled file: fit cgan, then eval label-accuracy."""
    import json

    from typer.testing import CliRunner

    from igm import checkpoint
    from igm.cli import app

    runner = CliRunner()
    fit = runner.invoke(app, ["fit", "cgan", "--data", gappy_npz, "--steps", "2", "--batch-size", "16", "--out", str(tmp_path / "run"), "-q"])
    assert fit.exit_code == 0, fit.output
    ckpt = tmp_path / "run" / checkpoint.MODEL_FILE
    model = checkpoint.load(ckpt)
    assert model.generator.num_classes == 8 and model.data.class_values == tuple(GAPPY)
    assert model.data.resolved == gappy_npz
    out = runner.invoke(app, ["eval", str(ckpt), "--metric", "label-accuracy", "-n", "80", "--json"])
    assert out.exit_code == 0, out.output
    scores = json.loads(out.stdout)["label-accuracy"]
    assert [k for k in scores if k.startswith("class ")] == [f"class {v}" for v in GAPPY]
    wrong = runner.invoke(app, ["eval", str(ckpt), "--data", "grid25", "--metric", "classifier-is"])
    lines = wrong.output.splitlines()  # what was read, then the one error line
    assert wrong.exit_code == 2 and len(lines) == 2 and lines[0].startswith("read grid25") and lines[1].startswith("Error: ")
