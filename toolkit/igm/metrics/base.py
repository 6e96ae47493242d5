"""Metrics: score a trained model against a data source and return named numbers.

A metric is a :class:`Metric` subclass instance registered with ``register_metrics``::

    class MyMetric(Metric):
        name = "my-metric"
        def __call__(self, model, data, n=10_000, seed=0) -> dict[str, float]:
            x = model.generator.sample(n, generator=torch.Generator().manual_seed(seed))
            return {"score": ...}

``igm eval CHECKPOINT --data SOURCE --metric NAME`` prints what it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from igm.data import DataInfo, DataSource
    from igm.models import Model


class Metric:
    """Scores ``model`` against ``data`` from ``n`` generated samples drawn with ``seed``."""

    name: ClassVar[str] = ""
    default_n: ClassVar[int] = 10_000

    def applies_to(self, data: DataInfo) -> bool:
        """Whether the metric can score models of this data (``igm eval`` runs the ones that can)."""
        return True

    def applies_to_model(self, model: Model) -> bool:
        """Whether the metric can score this model (e.g. only RBMs); ``igm eval`` skips the others."""
        return True

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        raise NotImplementedError
