"""Classifier-based metrics with a judge trained on the data (:mod:`igm.metrics.judge`): IS, FID, Q2, labels.

Each score is a plain function of tensors (so real images can be scored too) and a registered
:class:`~igm.metrics.base.Metric` that draws samples from a model. The judge is a small CNN
trained on the data source's own labelled training split, at the data's image size and channels
(any image of at least 4×4 pixels, any number of classes), the first time, and then read from
the cache. Its test split is the data's test split; data without one has a fixed sixth of its
training split held out instead. Beside every score of samples stands the same score of real data,
so a number on new data has a reference:

* ``classifier-is`` — :func:`inception_score` of the judge's p(y|x) on samples:
  exp(E_x KL(p(y|x) ‖ p(y))), the mean (and std) over 10 equal splits, as in Salimans et al.;
  ``real_inception_score`` is that of the real test images (MNIST ≈ 9.9; one repeated image: 1).
* ``classifier-fid`` — :func:`frechet_distance` between the judge's penultimate features of the
  real test images and of samples (float64 means and covariances; tr √(Σ₁Σ₂) from the eigenvalues
  of √Σ₁ Σ₂ √Σ₁, all in torch); ``real_fid``, between real training and test images, is the floor.
* ``stacked-modes`` — BENCHMARKS.md Q2 (:func:`stacked_scores`): each of the 3 channels of 26,000
  samples classified separately by the MNIST judge; *modes* = distinct predicted triples (of
  1,000); *KL* = Σ p log(p / 0.001) over the histogram of predicted triples; *HQ* = share of
  samples whose three channels all have max probability > 0.7; *IS* = exp(E KL(p(t|x) ‖ p(t)))
  over the 1,000 triples t with p(t|x) = p(a|x_R) p(b|x_G) p(c|x_B), on all samples (one split).
* ``label-accuracy`` — share of conditional samples the judge classifies as the class they were
  drawn for (every class in turn, so balanced), and the same per class (``class <label>``, the
  user's labels); the judge's accuracy on real test images is the reference.
* ``class-shares`` — :func:`class_shares` of unconditional samples (1,000 by default): the share the
  judge assigns to each class (``class <label>``), the smallest (``smallest_share``, and its
  ``smallest_class``), the share it calls with probability > 0.9 (``confident``), and
  KL(sample shares ‖ test-label shares) (``kl_to_data``); ``real_smallest_share`` is the smallest
  class's share of the real test labels. A model that drops or under-weights a class shows it here
  (the RBM, DBN and EBM targets: every class ≥ 5% of 1,000 samples).

Every check (image data, its size, labels, splits, the model's shape and classes) runs before the
judge trains, and fails as one line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor

from igm.errors import ConfigError, DataError
from igm.metrics.base import Metric
from igm.data.base import listing
from igm.metrics.judge import Judge, JudgeConfig, image_judge, judge_problem
from igm.progress import ProgressBar

if TYPE_CHECKING:
    from igm.data import DataInfo, DataSource
    from igm.models import Model

STACKED_SHAPE = (3, 28, 28)
HQ_THRESHOLD = 0.7
DEFAULT_JUDGE = JudgeConfig()  # the judge every metric uses (tests swap in a quicker one)


# ---- scores of tensors ------------------------------------------------------------------------


def inception_score(probs: Tensor, splits: int = 1) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) ‖ p(y))) of class probabilities ``probs`` (N, K): (mean, std) over ``splits``.

    The samples are cut into ``splits`` consecutive equal parts (the remainder dropped) and the
    score computed within each, with p(y) the part's mean; ``splits=1`` scores all at once.
    """
    p = probs.double()
    if p.ndim != 2 or p.shape[0] < splits or splits < 1:
        raise ValueError(f"inception_score needs probabilities (N, K) with N >= splits >= 1, got {tuple(p.shape)}")
    size = p.shape[0] // splits
    scores = []
    for part in p[: size * splits].split(size):
        marginal = part.mean(dim=0, keepdim=True)  # (1, K)
        kl = torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)  # (n, K), 0 log 0 = 0
        scores.append(math.exp(float(kl.sum(dim=1).mean())))
    t = torch.tensor(scores, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if splits > 1 else 0.0


def frechet_distance(f1: Tensor, f2: Tensor) -> float:
    """‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 √(Σ₁Σ₂)) of features ``f1`` (N, D) and ``f2`` (M, D), in float64."""
    a, b = f1.double(), f2.double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(a.shape[0], b.shape[0]) < 2:
        raise ValueError(f"frechet_distance needs features (N, D), (M, D) with N, M >= 2, got {tuple(a.shape)}, {tuple(b.shape)}")
    mu1, mu2 = a.mean(dim=0), b.mean(dim=0)
    s1, s2 = torch.cov(a.T), torch.cov(b.T)  # (D, D)
    w, v = torch.linalg.eigh(s1)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T  # √Σ₁
    middle = root1 @ s2 @ root1  # symmetric PSD; its eigenvalues are those of Σ₁Σ₂
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def class_shares(probs: Tensor) -> Tensor:
    """Share of the rows of ``probs`` (N, K) whose most probable class is k: (K,), summing to 1."""
    return torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1]).double() / probs.shape[0]


def stacked_scores(probs: Tensor) -> dict[str, float | int]:
    """Q2 scores of per-channel class probabilities ``probs`` (N, 3, 10) of stacked digits."""
    if probs.ndim != 3 or probs.shape[1:] != (3, 10):
        raise ValueError(f"stacked_scores needs per-channel probabilities (N, 3, 10), got {tuple(probs.shape)}")
    p = probs.double()
    n = p.shape[0]
    a, b, c = p.argmax(dim=2).unbind(dim=1)  # each (N,)
    triples = 100 * a + 10 * b + c  # (N,)
    counts = torch.bincount(triples, minlength=1000).double()  # (1000,)
    hist = counts[counts > 0] / n
    joint = torch.einsum("na,nb,nc->nabc", p[:, 0], p[:, 1], p[:, 2])  # (N, 10, 10, 10)
    score, _ = inception_score(rearrange(joint, "n a b c -> n (a b c)"))
    return {
        "modes": int((counts > 0).sum()),
        "num_modes": 1000,
        "kl": float((hist * (hist / 0.001).log()).sum()),
        "high_quality": float((p.amax(dim=2) > HQ_THRESHOLD).all(dim=1).double().mean()),
        "inception_score": score,
        "samples": n,
    }


def stacked_modes(x: Tensor, judge: Judge) -> dict[str, float | int]:
    """Q2 scores of stacked images ``x`` (N, 3, 28, 28), each channel classified by ``judge``."""
    if x.ndim != 4 or tuple(x.shape[1:]) != STACKED_SHAPE:
        raise ValueError(f"stacked_modes scores stacked images (N, 3, 28, 28), got {tuple(x.shape)}")
    probs = judge.probs(rearrange(x, "n c h w -> (n c) 1 h w"))  # (3N, 10)
    return stacked_scores(rearrange(probs, "(n c) k -> n c k", c=3))


def label_accuracy(x: Tensor, labels: Tensor, judge: Judge) -> float:
    """Share of images ``x`` (N, C, H, W) that ``judge`` classifies as ``labels`` (N,)."""
    return float((judge.logits(x).argmax(dim=1) == labels.cpu()).double().mean())


# ---- the judge of a data source and samples of a model ----------------------------------------

MIN_STEPS = 500  # small data sets (under SMALL_DATA images) train the judge for at least this many steps
SMALL_DATA = 10_000
HOLD_OUT = 6  # without a test split, 1/6 of the training split (a fixed draw) tests the judge
HOLD_OUT_SEED = 0


@dataclass(frozen=True)
class JudgedData:
    """The labelled images a judge trains and is tested on: (N, C, H, W) and labels 0..K-1."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    held_out: bool  # True: the test images are a held-out part of the training split


def judged_splits(data: DataSource, metric: str) -> JudgedData:
    """The data the judge of ``data`` learns from; DataError (one line, nothing trained) when there is none."""
    info = data.info
    mnist = getattr(data, "mnist", None)
    if mnist is not None:  # stacked MNIST: the judge learns its digits
        return JudgedData(mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test, False)
    where = f"metric '{metric}' trains its judge on the data, and '{info.name}'"
    problem = judge_problem(tuple(info.event_shape)) if info.kind == "image" else f"holds {info.kind}, not images"
    if problem is not None:
        raise DataError(f"{where}: {problem}; classifier metrics score images of at least 4x4 pixels")
    if not info.num_classes or info.num_classes < 2:
        raise DataError(
            f"{where} is {'unlabelled' if not info.num_classes else 'a single class'}: the judge needs two or more "
            "classes (labels y in an .npz, class subfolders in a folder)"
        )
    train, test = data.split("train"), data.split("test")
    if train is None or train[1] is None:
        raise DataError(f"{where} has no labelled training split: use a source that has one")
    if test is not None and test[1] is not None:
        return JudgedData(train[0], train[1], test[0], test[1], False)
    n = train[0].shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HOLD_OUT_SEED))
    cut = n - n // HOLD_OUT
    if n // HOLD_OUT < 2:
        raise DataError(f"{where} has {n} examples and no test split: the judge needs at least {2 * HOLD_OUT}")
    keep, held = order[:cut], order[cut:]
    return JudgedData(train[0][keep], train[1][keep], train[0][held], train[1][held], True)


def judge_for(data: DataSource, config: JudgeConfig | None = None, metric: str = "classifier metrics") -> Judge:
    """The judge of this source (stacked MNIST: of its digits), from the cache or trained now."""
    config = config or DEFAULT_JUDGE
    split = judged_splits(data, metric)
    return _judge(split, data.info.name, config)


def _judge(split: JudgedData, name: str, config: JudgeConfig) -> Judge:
    n = min(split.x_train.shape[0], config.max_train or split.x_train.shape[0])
    if n < SMALL_DATA:  # a few thousand images: more epochs, so the judge learns them
        config = dataclasses.replace(config, epochs=max(config.epochs, math.ceil(MIN_STEPS * config.batch_size / n)))
    return image_judge(split.x_train, split.y_train, split.x_test, split.y_test, config, name=name)


def draw(model: Model, n: int, seed: int, labels: Tensor | None = None, chunk: int = 2000) -> Tensor:
    """``n`` samples of ``model.generator`` on the CPU, drawn in chunks from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    model.eval()
    with torch.no_grad(), ProgressBar(n, description="sample", enabled=n > chunk) as bar:
        for i in range(0, n, chunk):
            part = None if labels is None else labels[i : i + chunk]
            out.append(model.generator.sample(min(chunk, n - i), labels=part, generator=gen).cpu())
            bar.update(min(n, i + chunk))
    return torch.cat(out)


def check_fits(model: Model, data: DataSource, metric: str) -> None:
    """DataError unless the model draws examples of the data's shape (checked before any judge trains)."""
    drawn, held = tuple(model.data.event_shape), tuple(data.info.event_shape)
    if drawn != held:
        raise DataError(
            f"metric '{metric}': this checkpoint draws examples of shape {drawn}, but '{data.info.name}' holds "
            f"{held}: evaluate on the data it was trained on (--data {model.data.name}, the default)"
        )


def _is_stacked(data: DataInfo) -> bool:
    return data.kind == "image" and tuple(data.event_shape) == STACKED_SHAPE and data.num_classes == 1000


def _require(ok: bool, metric: str, data: DataInfo, want: str) -> None:
    if not ok:
        raise DataError(f"metric '{metric}' scores {want}; '{data.name}' is not: evaluate with --data {want.split()[-1]}")


class JudgedMetric(Metric):
    """A metric of image samples scored by the judge of the data (labelled images, not stacked MNIST)."""

    default_n = 10_000

    def applies_to(self, data: DataInfo) -> bool:
        return (
            data.kind == "image"
            and judge_problem(tuple(data.event_shape)) is None
            and (data.num_classes or 0) >= 2
            and not _is_stacked(data)
        )

    def prepare(self, model: Model, data: DataSource) -> JudgedData:
        """Every check, before anything trains: the data can be judged and the model fits it."""
        if _is_stacked(data.info):
            raise DataError(f"metric '{self.name}' does not score stacked MNIST: use --metric stacked-modes")
        split = judged_splits(data, self.name)
        check_fits(model, data, self.name)
        return split


class ClassifierIS(JudgedMetric):
    """Inception score with the data's judge (10 splits), beside that of the real test images."""

    name = "classifier-is"

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        split = self.prepare(model, data)
        judge = _judge(split, data.info.name, DEFAULT_JUDGE)
        n = n or self.default_n
        score, std = inception_score(judge.probs(draw(model, n, seed)), splits=min(10, n))
        real = split.x_test[:n]
        per_split = max(1, n // min(10, n))  # real splits as large as the samples' (IS grows with split size)
        real_score, real_std = inception_score(judge.probs(real), splits=max(1, min(10, real.shape[0] // per_split)))
        return {
            "inception_score": score,
            "std": std,
            "real_inception_score": real_score,
            "real_std": real_std,
            "judge_accuracy": judge.test_accuracy,
        }


class ClassifierFID(JudgedMetric):
    """Fréchet distance of the judge's penultimate features: real test images against samples."""

    name = "classifier-fid"

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        split = self.prepare(model, data)
        judge = _judge(split, data.info.name, DEFAULT_JUDGE)
        n = n or self.default_n
        real = judge.features(split.x_test)
        fake = judge.features(draw(model, n, seed))
        return {
            "fid": frechet_distance(real, fake),
            "real_fid": frechet_distance(real, judge.features(split.x_train[:n])),  # the floor: train vs test
            "judge_accuracy": judge.test_accuracy,
        }


class StackedModes(Metric):
    """BENCHMARKS.md Q2: modes of 1,000, KL, HQ and IS of stacked-digit samples."""

    name = "stacked-modes"
    default_n = 26_000

    def applies_to(self, data: DataInfo) -> bool:
        return _is_stacked(data)

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float | int]:
        _require(self.applies_to(data.info), self.name, data.info, "stacked 3x28x28 digits: stacked-mnist")
        check_fits(model, data, self.name)
        judge = judge_for(data, metric=self.name)
        return {**stacked_modes(draw(model, n or self.default_n, seed), judge), "judge_accuracy": judge.test_accuracy}


class LabelAccuracy(JudgedMetric):
    """Share of conditional samples the judge classifies as their class (balanced), overall and per class."""

    name = "label-accuracy"

    def applies_to_model(self, model: Model) -> bool:
        return getattr(model.generator, "num_classes", None) is not None

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        if not self.applies_to_model(model):
            raise ConfigError(
                f"metric 'label-accuracy' needs a conditional model; this '{model.name}' is not one: "
                "train cgan (or --set conditional=true) on labelled data"
            )
        split = self.prepare(model, data)
        info, k = data.info, model.generator.num_classes
        if k != info.num_classes or model.data.labels() != info.labels():
            raise DataError(
                f"metric 'label-accuracy': this checkpoint draws {k} classes ({listing(model.data.labels())}) but "
                f"'{info.name}' has {info.num_classes} ({listing(info.labels())}): evaluate on the data it was trained on"
            )
        judge = _judge(split, info.name, DEFAULT_JUDGE)
        n = n or self.default_n
        labels = torch.arange(n) % k  # (n,) balanced
        hits = (judge.logits(draw(model, n, seed, labels)).argmax(dim=1) == labels).double()  # (n,)
        per_class = {f"class {value}": float(hits[labels == i].mean()) for i, value in enumerate(info.labels()) if i < n}
        return {"label_accuracy": float(hits.mean()), **per_class, "judge_accuracy": judge.test_accuracy}


class ClassShares(JudgedMetric):
    """Share of unconditional samples the judge assigns to each class; the smallest, and KL to the data's."""

    name = "class-shares"
    default_n = 1000
    confident = 0.9  # "called with confidence": the judge's top probability above this

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float | str]:
        split = self.prepare(model, data)
        judge = _judge(split, data.info.name, DEFAULT_JUDGE)
        probs = judge.probs(draw(model, n or self.default_n, seed))  # (n, K)
        shares = class_shares(probs)  # (K,)
        real = torch.bincount(split.y_test, minlength=shares.shape[0]).double() / split.y_test.shape[0]  # (K,)
        kept = shares > 0  # 0 log 0 = 0
        names = data.info.labels()
        low = int(shares.argmin())
        return {
            "smallest_share": float(shares[low]),
            "smallest_class": str(names[low]),
            "confident": float((probs.amax(dim=1) > self.confident).double().mean()),
            "kl_to_data": float((shares[kept] * (shares[kept] / real[kept]).log()).sum()),
            **{f"class {names[k]}": float(shares[k]) for k in range(shares.shape[0])},
            "real_smallest_share": float(real.min()),
            "judge_accuracy": judge.test_accuracy,
        }
