"""Metrics: named numbers that score a model against data (see :mod:`igm.metrics.base`)."""

from igm.metrics.base import Metric
from igm.metrics.classifier import (
    ClassifierFID,
    ClassShares,
    ClassifierIS,
    LabelAccuracy,
    StackedModes,
    class_shares,
    frechet_distance,
    inception_score,
    judge_for,
    judged_splits,
    stacked_modes,
    stacked_scores,
)
from igm.metrics.judge import Judge, JudgeConfig, image_judge, mnist_judge
from igm.metrics.likelihood import TestNLL, likelihood_summary, per_example_bounds
from igm.metrics.modes import ModeCoverage, mode_coverage
from igm.metrics.prdc import PRDC, prdc
from igm.metrics.rbm import AISLogLikelihood, PseudoLikelihood

BUILTIN_METRICS: dict[str, Metric] = {
    "modes": ModeCoverage(),
    "classifier-is": ClassifierIS(),
    "classifier-fid": ClassifierFID(),
    "stacked-modes": StackedModes(),
    "label-accuracy": LabelAccuracy(),
    "class-shares": ClassShares(),
    "nll": TestNLL(),
    "ais": AISLogLikelihood(),
    "pseudo-likelihood": PseudoLikelihood(),
    "prdc": PRDC(),
}

__all__ = [
    "AISLogLikelihood",
    "BUILTIN_METRICS",
    "ClassShares",
    "ClassifierFID",
    "ClassifierIS",
    "Judge",
    "JudgeConfig",
    "LabelAccuracy",
    "Metric",
    "ModeCoverage",
    "PRDC",
    "PseudoLikelihood",
    "StackedModes",
    "TestNLL",
    "class_shares",
    "frechet_distance",
    "image_judge",
    "inception_score",
    "judge_for",
    "judged_splits",
    "likelihood_summary",
    "mnist_judge",
    "mode_coverage",
    "per_example_bounds",
    "prdc",
    "stacked_modes",
    "stacked_scores",
]
