"""Classifier metrics against known answers: IS, FID, Stacked MNIST modes (Q2), label accuracy, class shares.

They use the session's quick real-MNIST judge (``small_judge``: 10,000 images, 2 epochs). The
judge's probabilities of the 10,000 test digits are computed once; stacked triples of test
digits are scored from them by index, which is exactly what classifying each channel does (the
test checks that equality on a few hundred real stacked images).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from einops import repeat

from igm.data.mnist import stack_digits
from igm.errors import ConfigError
from igm.generators import Generator
from igm.metrics import BUILTIN_METRICS
from igm.metrics import classifier as clf
from igm.metrics.classifier import class_shares, frechet_distance, inception_score, stacked_modes, stacked_scores
from igm.models import EmptyConfig, Model


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture


@pytest.fixture(scope="module")
def judged(small_judge):
    """(judge, splits, probabilities (10000, 10), features (10000, 128)) of the real test digits."""
    judge, splits, _ = small_judge
    return judge, splits, judge.probs(splits.x_test), judge.features(splits.x_test)


# ---- inception score -------------------------------------------------------------------------


def test_inception_score_closed_forms():
    one_hot = torch.eye(10).repeat(100, 1)  # (1000, 10): confident and balanced
    assert inception_score(one_hot, splits=10) == pytest.approx((10.0, 0.0), abs=1e-9)
    assert inception_score(torch.full((50, 10), 0.1)) == pytest.approx((1.0, 0.0))
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8]], dtype=torch.float64)
    m = p.mean(0)
    kl = (p * (p / m).log()).sum(1).mean()
    assert inception_score(p)[0] == pytest.approx(math.exp(float(kl)), rel=1e-12)


def test_classifier_is_of_real_digits_is_near_10_and_of_one_image_is_1(judged):
    judge, splits, probs, _ = judged
    score, std = inception_score(probs, splits=10)
    assert 9.0 < score <= 10.0 and std < 0.3
    repeated = judge.probs(repeat(splits.x_test[3], "c h w -> n c h w", n=500))
    assert inception_score(repeated, splits=10)[0] == pytest.approx(1.0, abs=1e-6)


# ---- Fréchet distance ------------------------------------------------------------------------


def test_frechet_distance_matches_scipy_in_float64():
    linalg = pytest.importorskip("scipy.linalg")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=gen, dtype=torch.float64) @ torch.randn(6, 6, generator=gen, dtype=torch.float64)
    b = torch.randn(300, 6, generator=gen, dtype=torch.float64) + 0.5
    s1, s2 = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    ref = float(((a.mean(0) - b.mean(0)) ** 2).sum()) + float(s1.trace() + s2.trace() - 2 * linalg.sqrtm(s1 @ s2).real.trace())
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_classifier_fid_is_near_0_for_real_digits_and_grows_with_noise(judged):
    judge, splits, _, features = judged
    half_a, half_b = features[:2500], features[2500:5000]
    real = frechet_distance(half_a, half_b)
    gen = torch.Generator().manual_seed(0)
    x_b = splits.x_test[2500:5000]
    noisy = [
        frechet_distance(half_a, judge.features((x_b + s * torch.randn(x_b.shape, generator=gen)).clamp(0, 1)))
        for s in (0.2, 0.4, 0.8)
    ]
    assert real < 0.1 * noisy[0]  # two halves of the test set: only the finite-sample bias
    assert noisy[0] < noisy[1] < noisy[2]


# ---- Stacked MNIST (Q2) ----------------------------------------------------------------------


def test_stacked_scores_of_real_stacked_digits_find_1000_modes(judged):
    judge, splits, probs, _ = judged
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(10_000, (26_000, 3), generator=gen)  # the protocol's 26,000 samples
    scores = stacked_scores(probs[idx])  # (26000, 3, 10): each channel judged separately
    assert scores["modes"] >= 995 and scores["samples"] == 26_000
    assert 0 <= scores["kl"] < 0.06  # finite-sample KL of 26,000 uniform draws ≈ 999 / 52,000
    hq_digit = float((probs.amax(1) > 0.7).double().mean())
    assert scores["high_quality"] == pytest.approx(hq_digit**3, abs=0.02)
    digit_is, _ = inception_score(probs)  # independent channels: IS of triples ≈ IS of digits cubed
    assert scores["inception_score"] == pytest.approx(digit_is**3, rel=0.03)
    # the image route classifies the channels of real stacked images the same way
    images, _ = stack_digits(splits.x_test, splits.y_test, idx[:300].T)  # (300, 3, 28, 28)
    direct = stacked_modes(images, judge)
    assert direct == pytest.approx(stacked_scores(probs[idx[:300]]), rel=1e-5)


def test_stacked_scores_of_ten_patterns_find_10_modes_and_kl_log_100(judged):
    _, splits, probs, _ = judged
    right = probs.argmax(1) == splits.y_test
    one_per_digit = torch.stack([torch.nonzero(right & (splits.y_test == k))[0, 0] for k in range(10)])  # (10,)
    patterns = torch.stack([one_per_digit, one_per_digit.roll(3), one_per_digit.roll(7)], dim=1)  # (10, 3)
    idx = patterns.repeat(2600, 1)  # (26000, 3): each of the 10 triples 2,600 times
    scores = stacked_scores(probs[idx])
    assert scores["modes"] == 10
    assert scores["kl"] == pytest.approx(math.log(100), rel=1e-12)


# ---- label accuracy --------------------------------------------------------------------------


class RealDigits(Generator):
    """A 'conditional generator' drawing real test digits: of the asked label, or of any label."""

    def __init__(self, x, y, honest: bool) -> None:
        super().__init__((1, 28, 28), num_classes=10)
        self.x, self.y, self.honest = x, y, honest

    def sample(self, n, labels=None, generator=None):
        labels = self.labels_for(n, labels, generator)
        if not self.honest:
            return self.x[torch.randint(len(self.x), (n,), generator=generator)]
        by_class = [torch.nonzero(self.y == k)[:, 0] for k in range(10)]
        picks = [by_class[k][torch.randint(len(by_class[k]), (1,), generator=generator)] for k in labels.tolist()]
        return self.x[torch.cat(picks)]


def fake_model(generator, data_info):
    model = Model(EmptyConfig(), data_info)
    model.generator = generator
    return model


@pytest.fixture()
def mnist_source(small_judge, monkeypatch):
    """The real MNIST source, with the metrics using the session's cached quick judge."""
    from igm.data import open_data

    judge, splits, cache = small_judge
    monkeypatch.setenv("IGM_CACHE_DIR", str(cache))
    monkeypatch.setattr(clf, "DEFAULT_JUDGE", judge.config)
    return open_data(f"mnist:{splits.origin}")


def test_label_accuracy_of_real_digits_is_the_judges_and_of_random_ones_a_tenth(judged, mnist_source):
    judge, splits, _, _ = judged
    metric = BUILTIN_METRICS["label-accuracy"]
    honest = fake_model(RealDigits(splits.x_test, splits.y_test, honest=True), mnist_source.info)
    acc = metric(honest, mnist_source, n=4000, seed=0)
    assert acc["label_accuracy"] == pytest.approx(judge.test_accuracy, abs=0.02)
    assert acc["judge_accuracy"] == judge.test_accuracy  # the very judge of the fixture, from the cache
    liar = fake_model(RealDigits(splits.x_test, splits.y_test, honest=False), mnist_source.info)
    assert metric(liar, mnist_source, n=4000, seed=0)["label_accuracy"] == pytest.approx(0.1, abs=0.02)


def test_label_accuracy_refuses_an_unconditional_model(mnist_source):
    plain = fake_model(RealDigits(torch.zeros(1, 1, 28, 28), torch.zeros(1), honest=False), mnist_source.info)
    plain.generator.num_classes = None
    with pytest.raises(ConfigError, match="conditional"):
        BUILTIN_METRICS["label-accuracy"](plain, mnist_source, n=10)
    assert not BUILTIN_METRICS["label-accuracy"].applies_to_model(plain)


# ---- class shares ----------------------------------------------------------------------------


def test_class_shares_count_the_most_probable_class():
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    assert class_shares(probs).tolist() == [0.5, 0.25, 0.25]
    assert class_shares(torch.eye(4)[[1, 1, 1]]).tolist() == [0.0, 1.0, 0.0, 0.0]


class OneClass(RealDigits):
    """Real test digits of one class only: a model that has lost every other digit."""

    def __init__(self, x, y, digit: int) -> None:
        super().__init__(x[y == digit], y[y == digit], honest=False)


def test_class_shares_of_balanced_digits_are_a_tenth_and_of_one_digit_all_its_own(judged, mnist_source):
    judge, splits, probs, _ = judged
    metric = BUILTIN_METRICS["class-shares"]
    real = torch.bincount(splits.y_test, minlength=10).double() / len(splits.y_test)  # (10,)
    balanced = metric(fake_model(RealDigits(splits.x_test, splits.y_test, honest=True), mnist_source.info), mnist_source,
                      n=3000, seed=0)  # labels drawn uniformly, then a real digit of each
    assert all(balanced[f"class {k}"] == pytest.approx(0.1, abs=0.025) for k in range(10))
    assert sum(balanced[f"class {k}"] for k in range(10)) == pytest.approx(1.0, abs=1e-12)
    assert balanced["kl_to_data"] == pytest.approx(float((0.1 * (0.1 / real).log()).sum()), abs=0.01)
    assert balanced["real_smallest_share"] == pytest.approx(float(real.min()))  # MNIST: fives, 0.0892
    assert balanced["confident"] > 0.85 and balanced["judge_accuracy"] == judge.test_accuracy
    threes = metric(fake_model(OneClass(splits.x_test, splits.y_test, 3), mnist_source.info), mnist_source, n=1000)
    called = class_shares(probs[splits.y_test == 3])  # (10,) what the judge calls the real threes: ~95% "3"
    assert all(threes[f"class {k}"] == pytest.approx(float(called[k]), abs=0.03) for k in range(10))
    assert threes["class 3"] > 0.9 and threes["smallest_share"] < 0.01 and threes["smallest_class"] != "3"
    kept = called > 0
    kl = float((called[kept] * (called[kept] / real[kept]).log()).sum())  # ~log(1/q_3) = 2.3
    assert threes["kl_to_data"] == pytest.approx(kl, abs=0.15)


def test_image_metrics_apply_to_their_data_only(mnist_source):
    from igm.data import open_data

    digits = {m for m, metric in BUILTIN_METRICS.items() if metric.applies_to(mnist_source.info)}
    assert {"classifier-is", "classifier-fid", "label-accuracy", "class-shares"} <= digits and "stacked-modes" not in digits
    grid = open_data("grid25").info
    assert not any(BUILTIN_METRICS[m].applies_to(grid) for m in ("classifier-is", "classifier-fid", "stacked-modes", "class-shares"))


def test_igm_eval_prints_stacked_modes_for_a_checkpoint(small_judge, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from igm import checkpoint
    from igm import config as cfg
    from igm.cli import app
    from igm.data import open_data
    from igm.registry import get_registry

    judge, splits, cache = small_judge
    monkeypatch.setenv("IGM_CACHE_DIR", str(cache))
    monkeypatch.setattr(clf, "DEFAULT_JUDGE", judge.config)
    spec = f"stacked-mnist:{splits.origin}"
    cls = get_registry().get("models", "gan")
    model = cls(cfg.build(cls.Config, {}, what="gan"), open_data(spec).info)  # untrained DCGAN
    ckpt = checkpoint.save(model, tmp_path / "model.safetensors")
    runner = CliRunner()
    out = runner.invoke(app, ["eval", str(ckpt), "--data", spec, "--metric", "stacked-modes", "-n", "300", "--json"])
    assert out.exit_code == 0, out.output
    scores = json.loads(out.stdout)["stacked-modes"]
    assert scores["samples"] == 300 and 1 <= scores["modes"] <= 300 and scores["judge_accuracy"] == judge.test_accuracy
    table = runner.invoke(app, ["eval", str(ckpt), "--data", spec, "--metric", "stacked-modes", "-n", "300"])
    assert table.exit_code == 0 and "modes" in table.stdout and "kl" in table.stdout
    wrong = runner.invoke(app, ["eval", str(ckpt), "--data", spec, "--metric", "classifier-is", "-n", "10"])
    assert wrong.exit_code == 2 and "stacked" not in wrong.stdout
