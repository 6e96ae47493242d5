"""Metrics: named numbers that score a model against data (see :mod:`igm.metrics.base`)."""

from igm.metrics.base import Metric
from igm.metrics.likelihood import TestNLL, likelihood_summary, per_example_bounds
from igm.metrics.modes import ModeCoverage, mode_coverage

BUILTIN_METRICS: dict[str, Metric] = {"modes": ModeCoverage(), "nll": TestNLL()}

__all__ = ["BUILTIN_METRICS", "Metric", "ModeCoverage", "TestNLL", "likelihood_summary", "mode_coverage", "per_example_bounds"]
