"""Watching a run: scores during training, the best checkpoint by a score, TensorBoard events.

- :class:`Evaluator` runs registered metrics on the current generator every ``eval_every``
  steps and at the end (rank 0 only). It works inside :func:`torch.random.fork_rng` with the
  model in eval mode, so training's RNG streams, BatchNorm statistics and therefore exact
  resume are untouched. Its numeric results are flattened to ``"metric.key"`` names (``modes.modes``,
  ``classifier-fid.fid``) and logged as ``{"step": k, "eval": {...}}`` lines of ``metrics.jsonl``.
- With ``keep_best = "METRIC.KEY"`` (``:min`` or ``:max`` to say which way is better; by default
  lower is better for names holding fid, kl, nll or loss, else higher), the model of the best
  score so far is kept as ``best.safetensors`` (written atomically); the record of that score
  lives in the trainer state, so a resumed run keeps comparing against it.
- :class:`TensorBoardLog` writes the losses, the scores and the sample pictures as TensorBoard
  events under ``DIR/tensorboard`` (``pip install 'igm-toolkit[tensorboard]'``); a resumed run
  purges the events after its checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from igm.errors import ConfigError

if TYPE_CHECKING:
    from igm.data import DataSource
    from igm.models import Model

BEST_FILE = "best.safetensors"
TENSORBOARD_DIR = "tensorboard"
LOWER_IS_BETTER = ("fid", "kl", "nll", "loss", "std")


@dataclass
class Best:
    """Which score decides the best checkpoint, which way, and the best seen so far."""

    key: str  # "metric.key"
    lower: bool
    value: float | None = None
    step: int | None = None

    @classmethod
    def parse(cls, text: str) -> Best:
        name, _, way = text.partition(":")
        if "." not in name or way not in ("", "min", "max"):
            raise ConfigError(
                f"--keep-best {text!r}: name a score as METRIC.KEY, optionally :min or :max (e.g. modes.modes:max)"
            )
        lower = way == "min" if way else any(word in name.split(".", 1)[1].lower() for word in LOWER_IS_BETTER)
        return cls(name, lower)

    @property
    def metric(self) -> str:
        return self.key.split(".", 1)[0]

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return self.value is None or (value < self.value if self.lower else value > self.value)

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "lower": self.lower, "value": self.value, "step": self.step})

    def restore(self, text: str) -> None:
        saved = json.loads(text)
        if saved.get("key") == self.key and saved.get("lower") == self.lower:
            self.value, self.step = saved.get("value"), saved.get("step")


def flatten(scores: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``{"modes": {"modes": 25, "note": "..."}}`` -> ``{"modes.modes": 25.0}`` (numbers only)."""
    return {
        f"{metric}.{key}": float(value)
        for metric, values in scores.items()
        for key, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class Evaluator:
    """Scores the current model with registered metrics on a schedule, RNG streams untouched."""

    def __init__(self, names: tuple[str, ...], every: int, n: int, keep_best: str = "") -> None:
        from igm.registry import get_registry

        self.best = Best.parse(keep_best) if keep_best else None
        if self.best is not None and self.best.metric not in names:
            names = (*names, self.best.metric)
        registry = get_registry()
        self.metrics = [(name, registry.get("metrics", name)) for name in names]
        self.every, self.n = every, n or None

    def check(self, model: Model, source: DataSource) -> None:
        """ConfigError naming a metric that cannot score this model on this data."""
        for name, metric in self.metrics:
            if not (metric.applies_to(source.info) and getattr(metric, "applies_to_model", lambda _: True)(model)):
                raise ConfigError(f"metric '{name}' does not apply to '{model.name}' on '{source.info.name}': "
                                  "choose another (igm eval lists the ones that apply)")

    def due(self, step: int, total: int) -> bool:
        return bool(self.metrics) and (step == total or (self.every > 0 and step % self.every == 0))

    def __call__(self, model: Model, source: DataSource, seed: int, device: torch.device) -> dict[str, float]:
        was_training = model.training
        forked = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=forked):
                scores = {name: metric(model, source, n=self.n, seed=seed) for name, metric in self.metrics}
        finally:
            model.train(was_training)
        return flatten(scores)


class TensorBoardLog:
    """Scalars and pictures of a run as TensorBoard event files under ``out_dir/tensorboard``."""

    def __init__(self, out_dir: Path, resume_step: int | None = None) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out_dir / TENSORBOARD_DIR), purge_step=resume_step)

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def picture(self, step: int, png: Path) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(png) as img:
            self.writer.add_image("samples", np.asarray(img.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


def require_tensorboard() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'igm-toolkit[tensorboard]'")
