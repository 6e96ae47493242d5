"""Classifier-based metrics with the MNIST judge (:mod:`igm.metrics.judge`): IS, FID, Q2, labels.

Each score is a plain function of tensors (so real images can be scored too) and a registered
:class:`~igm.metrics.base.Metric` that draws samples from a model:

* ``classifier-is`` — :func:`inception_score` of the judge's p(y|x) on generated 1×28×28 images:
  exp(E_x KL(p(y|x) ‖ p(y))), the mean (and std) over 10 equal splits of the samples, as in
  Salimans et al.; real MNIST test images score ≈ 9.9, one repeated image exactly 1.
* ``classifier-fid`` — :func:`frechet_distance` between the judge's penultimate features of the
  real test images and of samples (float64 means and covariances;
  tr √(Σ₁Σ₂) from the eigenvalues of √Σ₁ Σ₂ √Σ₁, all in torch).
* ``stacked-modes`` — BENCHMARKS.md Q2 (:func:`stacked_scores`): each of the 3 channels of 26,000
  samples classified separately; *modes* = distinct predicted triples (of 1,000); *KL* =
  Σ p log(p / 0.001) over the histogram of predicted triples; *HQ* = share of samples whose three
  channels all have max probability > 0.7; *IS* = exp(E KL(p(t|x) ‖ p(t))) over the 1,000
  triples t with p(t|x) = p(a|x_R) p(b|x_G) p(c|x_B), on all samples (one split).
* ``label-accuracy`` — share of conditional samples the judge classifies as the label they were
  drawn for (labels 0..9 in turn, so balanced).

The judge is trained on the data source's own MNIST training split the first time and then read
from the cache (see :mod:`igm.metrics.judge`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor

from igm.errors import ConfigError, DataError
from igm.metrics.base import Metric
from igm.metrics.judge import Judge, JudgeConfig, mnist_judge

if TYPE_CHECKING:
    from igm.data import DataInfo, DataSource
    from igm.models import Model

DIGIT_SHAPE = (1, 28, 28)
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
    """Share of images ``x`` (N, 1, 28, 28) that ``judge`` classifies as ``labels`` (N,)."""
    return float((judge.logits(x).argmax(dim=1) == labels.cpu()).double().mean())


# ---- the judge of a data source and samples of a model ----------------------------------------


def judge_for(data: DataSource, config: JudgeConfig | None = None) -> Judge:
    """The judge trained on this source's MNIST training split (stacked MNIST: its digits)."""
    config = config or DEFAULT_JUDGE
    mnist = getattr(data, "mnist", None)
    if mnist is not None:
        return mnist_judge(mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test, config)
    train, test = data.split("train"), data.split("test")
    if train is None or test is None or train[1] is None or test[1] is None:
        raise DataError(
            f"the MNIST judge trains on labelled train and test splits, and '{data.info.name}' lacks one: "
            "evaluate with --data mnist:PATH"
        )
    if data.info.num_classes != 10 or tuple(train[0].shape[1:]) != DIGIT_SHAPE:
        raise DataError(
            f"the MNIST judge needs 1x28x28 digits in 10 classes; '{data.info.name}' is not: evaluate with --data mnist:PATH"
        )
    return mnist_judge(train[0], train[1], test[0], test[1], config)


def draw(model: Model, n: int, seed: int, labels: Tensor | None = None, chunk: int = 2000) -> Tensor:
    """``n`` samples of ``model.generator`` on the CPU, drawn in chunks from one seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, n, chunk):
            part = None if labels is None else labels[i : i + chunk]
            out.append(model.generator.sample(min(chunk, n - i), labels=part, generator=gen).cpu())
    return torch.cat(out)


def _is_digits(data: DataInfo) -> bool:
    return data.kind == "image" and tuple(data.event_shape) == DIGIT_SHAPE and data.num_classes == 10


def _require(ok: bool, metric: str, data: DataInfo, want: str) -> None:
    if not ok:
        raise DataError(f"metric '{metric}' scores {want}; '{data.name}' is not: evaluate with --data {want.split()[-1]}")


class DigitsMetric(Metric):
    """A judged metric of 1×28×28 digit samples (MNIST data sources)."""

    default_n = 10_000

    def applies_to(self, data: DataInfo) -> bool:
        return _is_digits(data)

    def judge(self, data: DataSource) -> Judge:
        _require(self.applies_to(data.info), self.name, data.info, "1x28x28 digits: mnist")
        return judge_for(data)


class ClassifierIS(DigitsMetric):
    """Inception score with the MNIST judge (10 splits; ≈ 9.9 for real test digits)."""

    name = "classifier-is"

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        judge = self.judge(data)
        score, std = inception_score(judge.probs(draw(model, n or self.default_n, seed)), splits=10)
        return {"inception_score": score, "std": std, "judge_accuracy": judge.test_accuracy}


class ClassifierFID(DigitsMetric):
    """Fréchet distance of the judge's penultimate features: real test digits against samples."""

    name = "classifier-fid"

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        judge = self.judge(data)
        real = data.split("test")[0]  # type: ignore[index]  # judge_for checked it exists
        fake = draw(model, n or self.default_n, seed)
        return {"fid": frechet_distance(judge.features(real), judge.features(fake)), "judge_accuracy": judge.test_accuracy}


class StackedModes(Metric):
    """BENCHMARKS.md Q2: modes of 1,000, KL, HQ and IS of stacked-digit samples."""

    name = "stacked-modes"
    default_n = 26_000

    def applies_to(self, data: DataInfo) -> bool:
        return data.kind == "image" and tuple(data.event_shape) == STACKED_SHAPE and data.num_classes == 1000

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float | int]:
        _require(self.applies_to(data.info), self.name, data.info, "stacked 3x28x28 digits: stacked-mnist")
        judge = judge_for(data)
        return {**stacked_modes(draw(model, n or self.default_n, seed), judge), "judge_accuracy": judge.test_accuracy}


class LabelAccuracy(DigitsMetric):
    """Share of conditional samples the judge classifies as their requested label (balanced labels)."""

    name = "label-accuracy"

    def applies_to_model(self, model: Model) -> bool:
        return getattr(model.generator, "num_classes", None) == 10

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        if not self.applies_to_model(model):
            raise ConfigError(
                f"metric 'label-accuracy' needs a conditional model of the 10 digits; this '{model.name}' "
                "is not one: train cgan (or --set conditional=true) on mnist"
            )
        judge = self.judge(data)
        n = n or self.default_n
        labels = torch.arange(n) % 10  # (n,) balanced
        return {"label_accuracy": label_accuracy(draw(model, n, seed, labels), labels, judge), "judge_accuracy": judge.test_accuracy}
