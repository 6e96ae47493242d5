"""Helpers of the performance suites; see conftest.py for the conventions."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
ROOT = BENCH_DIR.parent

SUMMARIES: list[str] = []


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def repeats(default: int) -> int:
    """Interleaved rounds: ``IGM_BENCH_REPEATS`` or the suite's default."""
    return env_int("IGM_BENCH_REPEATS", default)


def rounds_within(default: int, seconds_per_round: float, budget_s: float, minimum: int = 5) -> int:
    """Rounds that fit a time budget on this machine today: ``IGM_BENCH_REPEATS`` if set, else the
    suite's default, lowered (never below ``minimum``) when a round is slow because the machine is busy."""
    if os.environ.get("IGM_BENCH_REPEATS"):
        return env_int("IGM_BENCH_REPEATS", default)
    return max(minimum, min(default, int(budget_s / max(seconds_per_round, 1e-9))))


def _git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}{'+dirty' if dirty else ''}" if rev else None


def machine_info() -> dict[str, Any]:
    """Where and when a figure was measured."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "git": _git_revision(),
    }
    try:
        load = os.getloadavg()
        info["load_avg_1m"] = round(load[0], 2)
    except (AttributeError, OSError):
        pass
    if "torch" in sys.modules:  # the CLI suite must not import torch in this process for its own sake
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    else:
        out = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
        )
        info["torch"] = out.stdout.strip() or None
    return info


def write_result(name: str, payload: dict[str, Any], summary: str) -> Path:
    """Write ``results/<name>.json`` (payload + machine info + summary) and queue the summary line."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "summary": summary, "machine": machine_info(), **payload}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    SUMMARIES.append(f"{name}: {summary}")
    print(f"{name}: {summary}")
    return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """Per-round ratios (the two lists come from the same interleaved rounds)."""
    return [a / b for a, b in zip(numerator, denominator)]


def ratio_of_minimums(numerator: list[float], denominator: list[float]) -> float:
    """min(numerator) / min(denominator): noise only ever adds time, so the fastest runs are a
    second, load-resistant estimate of the intrinsic ratio (reported beside the median)."""
    return min(numerator) / min(denominator)


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and the interquartile range of a list of per-round figures."""
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": q[0],
        "q3": q[2],
    }


class Interleaved:
    """Time several contenders in interleaved rounds; the order rotates every round.

    ``contenders`` maps a name to a ``prepare()`` callable that does any untimed set-up and
    returns the zero-argument ``work`` callable to time. Each round records, per contender,
    the wall time (``times``) and the CPU time of this process (``cpu``). With one torch thread
    the CPU time hardly moves when another process takes the core for a while, so its ratio is
    a useful cross-check of the wall-time ratio on a busy machine.
    """

    def __init__(self, contenders: dict[str, Callable[[], Callable[[], Any]]]) -> None:
        self.contenders = contenders
        self.times: dict[str, list[float]] = {name: [] for name in contenders}
        self.cpu: dict[str, list[float]] = {name: [] for name in contenders}
        self.rounds = 0

    def round(self) -> None:
        names = list(self.contenders)
        shift = self.rounds % len(names)
        for name in names[shift:] + names[:shift]:
            work = self.contenders[name]()
            c0, t0 = time.process_time(), time.perf_counter()
            work()
            t1, c1 = time.perf_counter(), time.process_time()
            self.times[name].append(t1 - t0)
            self.cpu[name].append(c1 - c0)
        self.rounds += 1

    def ratio(self, a: str, b: str, cpu: bool = False) -> list[float]:
        table = self.cpu if cpu else self.times
        return ratios(table[a], table[b])


def run_rounds(benchmark: Any, bench: Interleaved, rounds: int) -> None:
    """Drive ``bench`` through pytest-benchmark (one benchmark round = one interleaved round)."""
    benchmark.pedantic(bench.round, rounds=rounds, iterations=1, warmup_rounds=0)
