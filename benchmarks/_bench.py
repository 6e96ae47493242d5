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
# real MNIST: $IGM_MNIST, else ../shared/data/mnist.npz beside the repository
MNIST = Path(os.environ.get("IGM_MNIST") or ROOT.parent / "shared" / "data" / "mnist.npz")

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


def portable(text: str) -> str:
    """``text`` with this machine's paths written relative to the repository (MNIST, the checkout, its .venv)."""
    return text.replace(str(MNIST), os.path.relpath(MNIST, ROOT)).replace(str(ROOT) + os.sep, "")


def write_result(name: str, payload: dict[str, Any], summary: str) -> Path:
    """Write ``results/<name>.json`` (payload + machine info + summary) and queue the summary line."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "summary": summary, "machine": machine_info(), **payload}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(portable(json.dumps(data, indent=2, sort_keys=False)) + "\n", encoding="utf-8")
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


def train_with_checkpoints(
    model_name: str, values: dict[str, str], data: str, seed: int, steps: int, every: int, out: Path,
    record: dict[str, Any], batch_size: int = 64,
) -> None:
    """Train a registered model with the default trainer, keeping ``out/step_NNNNNNN.safetensors``
    every ``every`` steps and ``out/train.json`` (``record`` + config, wall time and losses per
    checkpoint, ``done``). A finished run is skipped. Quality benchmarks (Q2, Q4) score the files."""
    import torch

    from igm import checkpoint
    from igm import config as cfg
    from igm.data import open_data
    from igm.registry import get_registry
    from igm.trainer import RunConfig, Trainer

    if (out / "train.json").exists() and json.loads((out / "train.json").read_text()).get("done"):
        print(f"{out.name}: done already, skipped", flush=True)
        return
    out.mkdir(parents=True, exist_ok=True)
    cls = get_registry().get("models", model_name)
    source = open_data(data, seed)
    run = RunConfig(steps=steps, batch_size=batch_size, seed=seed, device="cpu", sample_every=0, checkpoint_every=0)
    torch.manual_seed(seed)
    model = cls(cfg.build(cls.Config, values, what=model_name), source.info)
    trainer = Trainer(model, source, run, None, progress=False)
    torch.manual_seed(seed)  # as Trainer.fit does at the start of a run
    record = {
        **record, "model": model_name, "data": data, "seed": seed, "steps": steps, "batch_size": batch_size,
        "overrides": values, "config": cfg.to_dict(model.config), "torch_threads": torch.get_num_threads(),
        "checkpoints": {}, "done": False,
    }
    t0 = time.perf_counter()
    while trainer.step < steps:
        losses = trainer.train_step()
        if trainer.step % every == 0 or trainer.step == steps:
            wall = time.perf_counter() - t0
            path = checkpoint.save(model, out / f"step_{trainer.step:07d}.safetensors", trainer.step)
            record["checkpoints"][str(trainer.step)] = {"file": path.name, "wall_s": round(wall, 1), "losses": losses}
            record["done"] = trainer.step == steps
            (out / "train.json").write_text(json.dumps(record, indent=1) + "\n")
            print(f"{out.name}: step {trainer.step}/{steps} {wall:.0f}s {losses}", flush=True)


def score_checkpoints(out: Path, tag: str, score: Callable[[Path], dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(train.json record, scores)`` of every checkpoint of the run in ``out``, in step order.

    ``score(path)`` scores one checkpoint file; results are cached in ``out/scores.json`` under
    ``"<step>:<tag>"`` (``tag`` names the judge and sample count), with the evaluation wall time.
    """
    record = json.loads((out / "train.json").read_text())
    cache_file = out / "scores.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    rows = []
    for step, info in sorted(record["checkpoints"].items(), key=lambda kv: int(kv[0])):
        key = f"{step}:{tag}"
        if key not in cache:
            t0 = time.perf_counter()
            cache[key] = {**score(out / info["file"]), "eval_wall_s": round(time.perf_counter() - t0, 1)}
            cache_file.write_text(json.dumps(cache, indent=1) + "\n")
            print(f"{out.name} step {step}: {cache[key]}", flush=True)
        rows.append(({**record, "step": int(step), "train_wall_s": info["wall_s"]}, cache[key]))
    return rows
