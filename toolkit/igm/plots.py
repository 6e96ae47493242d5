"""Pictures of runs: every player's loss and every score against steps, several runs overlaid.

``igm plot RUN_DIR [RUN_DIR ...] --out curves.png`` draws one panel per quantity found in the
runs' ``metrics.jsonl`` (a loss of each player, each logged extra, each score from
``--eval-every``), one line per run, so that a GAN and its GAN-SI read side by side. ``igm fit``
draws its own run as ``DIR/curves.png`` at the end. Needs matplotlib
(``pip install 'igm-toolkit[plot]'``); it is imported only here.
"""

from __future__ import annotations

import importlib.util
import io
import math
from pathlib import Path

from igm.errors import ConfigError
from igm.rundir import read_metrics

CURVES_FILE = "curves.png"
PANEL_INCHES = (4.0, 2.6)
DPI = 100
NOT_PLOTTED = ("step", "steps_per_s", "elapsed_s")


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def series(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``{quantity: (steps, values)}`` of one run: losses as logged, scores as ``eval: metric.key``."""
    metrics = Path(run_dir) / "metrics.jsonl"
    if not metrics.is_file():
        raise ConfigError(f"{run_dir} holds no metrics.jsonl: give run directories written by igm fit")
    out: dict[str, tuple[list[int], list[float]]] = {}
    for entry in read_metrics(metrics):
        values = {f"eval: {k}": v for k, v in entry["eval"].items()} if isinstance(entry.get("eval"), dict) else entry
        for key, value in values.items():
            if key in NOT_PLOTTED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            steps, ys = out.setdefault(key, ([], []))
            steps.append(entry["step"])
            ys.append(float(value))
    return out


def panel_layout(count: int) -> tuple[int, int]:
    """(rows, columns) of ``count`` panels, at most three columns."""
    cols = min(3, max(1, count))
    return max(1, math.ceil(count / cols)), cols


def plot_runs(run_dirs: list[Path], out: Path) -> Path:
    """Write the curves of ``run_dirs`` to the PNG ``out``; returns its path."""
    if not available():
        raise ConfigError("plots need matplotlib: pip install 'igm-toolkit[plot]'")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {str(d): series(Path(d)) for d in run_dirs}
    keys = sorted({k for s in runs.values() for k in s}, key=lambda k: (k.startswith("eval: "), k))
    if not keys:
        raise ConfigError(f"{', '.join(runs)}: no logged steps yet, nothing to plot")
    rows, cols = panel_layout(len(keys))
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows), dpi=DPI,
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, data in runs.items():
            if key in data:
                ax.plot(*data[key], label=Path(name).name or name, linewidth=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if len(runs) > 1:
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="upper right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: plots are PNG files, name it something.png")
    from igm.checkpoint import write_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    write_atomic(out, buf.getvalue())
    return out
