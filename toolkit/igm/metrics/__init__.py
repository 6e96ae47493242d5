"""Metrics: named numbers that score a model against data (see :mod:`igm.metrics.base`)."""

from igm.metrics.base import Metric
from igm.metrics.modes import ModeCoverage, mode_coverage

BUILTIN_METRICS: dict[str, Metric] = {"modes": ModeCoverage()}

__all__ = ["BUILTIN_METRICS", "Metric", "ModeCoverage", "mode_coverage"]
