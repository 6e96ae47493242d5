"""Metrics: named numbers that score a model against data (see :mod:`igm.metrics.base`)."""

from igm.metrics.base import Metric
from igm.metrics.likelihood import TestNLL, likelihood_summary, per_example_bounds
from igm.metrics.modes import ModeCoverage, mode_coverage
from igm.metrics.rbm import AISLogLikelihood, PseudoLikelihood

BUILTIN_METRICS: dict[str, Metric] = {
    "modes": ModeCoverage(),
    "nll": TestNLL(),
    "ais": AISLogLikelihood(),
    "pseudo-likelihood": PseudoLikelihood(),
}

__all__ = [
    "AISLogLikelihood",
    "BUILTIN_METRICS",
    "Metric",
    "ModeCoverage",
    "PseudoLikelihood",
    "TestNLL",
    "likelihood_summary",
    "mode_coverage",
    "per_example_bounds",
]
