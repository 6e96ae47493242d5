"""A progress display for long work: a live bar on a terminal, plain lines elsewhere.

On a terminal it shows step, steps per second, time left and the latest losses (rich); in a
log file or CI it prints a line at every hundredth of the work and at least every
``LINE_EVERY_S`` seconds, whichever comes first, so a long run is never silent for long.
"""

from __future__ import annotations

import sys
import time
from typing import Any

LINE_EVERY_S = 10.0  # the longest silence of a non-terminal progress display

def _losses(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items())


class ProgressBar:
    """``update(done, losses)`` as work advances; ``close()`` at the end (also a context manager)."""

    def __init__(self, total: int, start: int = 0, description: str = "fit", enabled: bool = True) -> None:
        self.total, self.start, self.description, self.enabled = total, start, description, enabled
        self.t0 = time.perf_counter()
        self.last_draw = 0.0
        self.next_line = start
        self._progress: Any = None
        if not enabled:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, completed=start, rate="", losses="")
            self._progress.start()

    def rate(self, done: int) -> float:
        elapsed = time.perf_counter() - self.t0
        return (done - self.start) / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, losses: dict[str, float] | None = None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._progress is not None:
            if force or now - self.last_draw > 0.1 or done >= self.total:
                self.last_draw = now
                self._progress.update(
                    self._task, completed=done, rate=f"{self.rate(done):.1f} it/s", losses=_losses(losses or {})
                )
            return
        if force or done >= self.next_line or done >= self.total or now - self.last_draw >= LINE_EVERY_S:
            step = max(1, self.total // 100)
            self.next_line = (done // step + 1) * step
            self.last_draw = now
            pct = 100 * done / max(1, self.total)
            print(
                f"{self.description}: {done}/{self.total} ({pct:.0f}%)  {self.rate(done):.1f} it/s  {_losses(losses or {})}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
