"""The defaults table (issue 16): every family on the data its README section names, with the defaults a user gets.

A script, not a test. Each row is the user's own path and nothing else: ``igm fit FAMILY --data
SOURCE --seed S`` (no ``--steps``, no ``--set`` beyond the variant the README names, such as
``divergence=wasserstein``), then ``igm eval CHECKPOINT --metric M --json`` with the row's
metrics, both run as subprocesses of the installed CLI on ``--threads`` torch threads. Each run
records its scores, the wall time of ``igm fit`` (start-up included) and the machine's load
average when it started (this machine is shared: read the times with it), and keeps the run's
``samples.png`` as ``results/defaults/<row>_s<seed>.png``.

Results merge into ``results/defaults.json`` (keyed by row and seed, so runs of a few rows at a
time accumulate), and ``results/defaults.md`` is rewritten from all of them: per row the seeds
run, each score as mean ± std (min–max) over seeds, the target the issue sets, the published row beside it,
and the first seed's picture.

    python benchmarks/defaults.py --list                              # the rows
    python benchmarks/defaults.py --group points --seeds 0 1 2 3 4    # every 2-D row, 5 seeds
    python benchmarks/defaults.py --row gan/ring8 sig/ring8 --seeds 0
    python benchmarks/defaults.py --group images --seeds 0            # hours on a CPU
    python benchmarks/defaults.py --table                             # rewrite defaults.md only

Real MNIST comes from ``$IGM_MNIST`` or ``../shared/data/mnist.npz`` beside the repository
(``_bench.MNIST``); rows on MNIST are skipped with a note when it is absent.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench import MNIST, RESULTS_DIR, portable

JSON_FILE = RESULTS_DIR / "defaults.json"
TABLE_FILE = RESULTS_DIR / "defaults.md"
PICTURES = RESULTS_DIR / "defaults"

POINTS_TARGET = {"grid25": "PacGAN rule ≥ 17/25, HQ ≥ 0.8", "ring8": "PacGAN rule ≥ 7/8, HQ ≥ 0.8"}
POINTS_PUBLISHED = {  # BENCHMARKS.md Q1 prints grid25 rows only
    "grid25": "PacGAN's GAN 17.3 modes, HQ 0.948; SIG paper's GAN 4.0 ± 3.1, SIG 25 ± 0 (HQ 0.91)",
    "ring8": "",
}
SEMI_IMPLICIT_TARGET = {"grid25": "25/25, HQ ≥ 0.9", "ring8": "8/8, HQ ≥ 0.9"}
CLASSES_TARGET = "every class ≥ 5% of 1,000 samples"


@dataclass(frozen=True)
class Row:
    """One line of the table: a family, its README data, the README's variant settings, the metrics."""

    family: str
    data: str  # a source name; "mnist"-based names get the MNIST path appended
    metrics: tuple[str, ...]
    sets: tuple[str, ...] = ()  # the variant the README names (e.g. divergence=wasserstein), never tuning
    label: str = ""  # the row's name when it is a variant
    target: str = ""
    published: str = ""
    keys: tuple[str, ...] = field(default=())  # the scores shown in the table, as "metric.key"

    @property
    def name(self) -> str:
        return f"{self.label or self.family}/{self.data}"

    def source(self) -> str | None:
        """The --data argument, or None when it needs MNIST and there is none."""
        if "mnist" not in self.data:
            return self.data
        return f"{self.data}:{MNIST}" if MNIST.is_file() else None


MODES_KEYS = ("modes.modes", "modes.modes_pacgan", "modes.high_quality", "modes.kl")


def point_rows() -> list[Row]:
    rows = []
    variants = [  # (family, label, sets)
        ("gan", "gan", ()),
        ("gan", "gan-kl", ("divergence=kl",)),
        ("gan", "wgan-gp", ("divergence=wasserstein",)),
        ("iwgan", "", ()),
        ("cgan", "", ()),
        ("mmd", "", ()),
        ("sig", "", ()),
        ("gan-si", "", ()),
        ("ebm", "", ()),
    ]
    for data in ("grid25", "ring8"):
        for family, label, sets in variants:
            semi = family in ("sig", "gan-si")
            rows.append(Row(family, data, ("modes",), sets, label,
                            SEMI_IMPLICIT_TARGET[data] if semi else POINTS_TARGET[data],
                            POINTS_PUBLISHED[data], MODES_KEYS))
    return rows


def image_rows() -> list[Row]:
    nll = ("nll.nll", "nll.elbo")
    classes = ("class-shares.smallest_share", "class-shares.smallest_class", "class-shares.confident")
    return [
        Row("vae", "binarized-mnist", ("nll",), keys=nll, published="IWAE paper (3,280 passes): VAE −86.76"),
        Row("vae", "binarized-mnist", ("nll",), ("k=5",), "iwae", keys=nll, published="IWAE paper: IWAE k=5 −85.54"),
        Row("aavae", "binarized-mnist", ("nll",), keys=nll),
        Row("rbm", "binarized-mnist", ("ais", "class-shares"), keys=("ais.log_likelihood", *classes),
            target=f"AIS within 1 nat of scikit-learn's at the same passes; {CLASSES_TARGET}",
            published="scikit-learn BernoulliRBM, 10 passes, linear decay: 1,000 hidden −95.38 ± 0.51 (seed 0), "
            "500 hidden −96.75 ± 0.64 (20 seeds; ours, Q3); CD-25 (500 hidden) −86.34"),
        Row("dbn", "binarized-mnist", ("ais", "class-shares"), keys=("ais.log_likelihood_lower_bound", *classes),
            target=CLASSES_TARGET + " (AIS: a lower bound)"),
        Row("ebm", "binarized-mnist", ("class-shares",), keys=classes, target="recognisable digits; " + CLASSES_TARGET),
        Row("gan", "mnist", ("classifier-is", "class-shares"), keys=("classifier-is.inception_score", *classes[:2]),
            target="classifier-IS ≥ 8.3", published="Hu et al.: GAN 8.34 (real ≈ 9.9)"),
        Row("iwgan", "mnist", ("classifier-is",), keys=("classifier-is.inception_score",),
            target="IS above gan's", published="Hu et al.: IWGAN 8.45"),
        Row("cgan", "mnist", ("label-accuracy",), keys=("label-accuracy.label_accuracy",),
            target="label accuracy ≥ 0.985", published="Hu et al.: CGAN 0.985"),
        Row("gan", "stacked-mnist", ("stacked-modes",), keys=("stacked-modes.modes", "stacked-modes.kl"),
            target="the published regime (≥ 99 modes)", published="SIG paper DCGAN(M) 811.8 / KL 0.75; PacGAN's DCGAN 99"),
        Row("gan-si", "stacked-mnist", ("stacked-modes",), keys=("stacked-modes.modes", "stacked-modes.kl"),
            target="≥ 969 modes, KL ≤ 0.3", published="SIG paper DCGAN-SI(M) 969.0 ± 29.2 / 0.30"),
    ]


ROWS = {row.name: row for row in point_rows() + image_rows()}
GROUPS = {"points": [r.name for r in point_rows()], "images": [r.name for r in image_rows()]}


def igm(*args: str, threads: int, timeout: float) -> subprocess.CompletedProcess:
    """The installed CLI as a user runs it, on ``threads`` torch threads; a call past ``timeout`` fails (status -1)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    try:
        return subprocess.run([sys.executable, "-m", "igm", *args], capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, -1, "", f"stopped after the --timeout of {timeout:.0f} s")


def run_row(row: Row, seed: int, threads: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """Fit and score one row at one seed; the record that goes into defaults.json."""
    source = row.source()
    if source is None:
        return {"skipped": f"no MNIST at {MNIST}: set IGM_MNIST"}
    out = workdir / f"{row.name.replace('/', '_')}_s{seed}"
    shutil.rmtree(out, ignore_errors=True)
    fit = ["fit", row.family, "--data", source, "--seed", str(seed), "--out", str(out), "--threads", str(threads)]
    for assignment in row.sets:
        fit += ["--set", assignment]
    def shown(text: str) -> str:  # no path of this machine goes into the results
        return portable(text.replace(str(out), "OUT"))

    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = igm(*fit, threads=threads, timeout=timeout)
    wall = time.perf_counter() - start
    record: dict[str, Any] = {"command": "igm " + shown(" ".join(fit)), "fit_s": round(wall, 1), "load": round(load, 2)}
    if done.returncode != 0:
        record["error"] = shown((done.stderr.strip().splitlines() or ["(no output)"])[-1])
        return record
    metrics = [a for m in row.metrics for a in ("--metric", m)]
    scored = igm("eval", str(out / "model.safetensors"), *metrics, "--json", "--seed", "0", threads=threads,
                 timeout=timeout)
    if scored.returncode != 0:
        record["error"] = shown((scored.stderr.strip().splitlines() or ["(no output)"])[-1])
        return record
    record["scores"] = {f"{m}.{k}": v for m, values in json.loads(scored.stdout).items() for k, v in values.items()
                        if isinstance(v, (int, float, str)) and not isinstance(v, bool) and k != "note"}
    picture = out / "samples.png"
    if picture.is_file():
        PICTURES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, PICTURES / f"{out.name}.png")
        record["picture"] = f"defaults/{out.name}.png"
    return record


def span(values: list[Any]) -> str:
    """One seed's value; over seeds 'mean ± std (min–max)' for numbers, the distinct values for names."""
    if not values:
        return "—"
    if not all(isinstance(v, (int, float)) for v in values):
        return ", ".join(dict.fromkeys(str(v) for v in values))
    fmt = (lambda v: f"{v:d}") if all(isinstance(v, int) for v in values) else (lambda v: f"{v:.4g}")
    lo, hi = min(values), max(values)
    if lo == hi:
        return fmt(lo)
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g} ({fmt(lo)}–{fmt(hi)})"


def table(results: dict[str, dict[str, Any]]) -> str:
    """defaults.md: one line per row that has results, in the order of ROWS."""
    lines = ["# The defaults table (`benchmarks/defaults.py`)", "",
             "Each row: `igm fit FAMILY --data SOURCE --seed S` with nothing else (the variant's `--set` only), "
             "then `igm eval` with the row's metrics. Over several seeds a score reads mean ± std (min–max); `fit s` is the wall "
             "time of `igm fit` on the load shown (a shared 2-core machine).", "",
             "| row | variant | seeds | scores | fit s | load | target | published | picture |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in ROWS.items():
        runs = {int(k.rsplit("/s", 1)[1]): v for k, v in results.items() if k.rsplit("/s", 1)[0] == name}
        if not runs:
            continue
        good = {s: r for s, r in sorted(runs.items()) if "scores" in r}
        failed = {s: r.get("error") or r.get("skipped") for s, r in sorted(runs.items()) if "scores" not in r}
        scores = "; ".join(f"{key.split('.', 1)[1]} {span([r['scores'][key] for r in good.values() if key in r['scores']])}"
                           for key in row.keys) if good else ""
        if failed:
            scores += ("; " if scores else "") + "; ".join(f"seed {s}: {why}" for s, why in failed.items())
        first = next((r for r in good.values() if "picture" in r), None)
        picture = f"![{name}]({first['picture']})" if first else ""
        lines.append(f"| {name} | {' '.join(row.sets) or '—'} | {', '.join(map(str, good)) or '—'} | {scores} | "
                     f"{span([r['fit_s'] for r in good.values()])} | {span([r['load'] for r in good.values()])} | "
                     f"{row.target} | {row.published} | {picture} |")
    return "\n".join(lines) + "\n"


def read_results() -> dict[str, Any]:
    return json.loads(JSON_FILE.read_text()) if JSON_FILE.is_file() else {}


def merge(records: dict[str, Any]) -> None:
    """Add ``records`` to defaults.json as it is now (another run of this script may have added rows since we started)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    with open(RESULTS_DIR / ".defaults.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {**read_results(), **records}
        partial = JSON_FILE.with_suffix(".json.partial")
        partial.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        partial.replace(JSON_FILE)
        TABLE_FILE.write_text(table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", nargs="*", default=[], help="rows by name (see --list)")
    parser.add_argument("--group", choices=sorted(GROUPS), action="append", default=[])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per igm call")
    parser.add_argument("--keep-runs", type=Path, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--table", action="store_true", help="only rewrite defaults.md from defaults.json")
    args = parser.parse_args()
    if args.list:
        for name, row in ROWS.items():
            print(f"{name:28s} igm fit {row.family} --data {row.data} {' '.join('--set ' + s for s in row.sets)}")
        return
    unknown = [r for r in args.row if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}: see --list")
    names = list(dict.fromkeys(args.row + [n for g in args.group for n in GROUPS[g]]))
    workdir = args.keep_runs or Path(tempfile.mkdtemp(prefix="igm-defaults-"))
    for name in [] if args.table else names:
        for seed in args.seeds:
            record = run_row(ROWS[name], seed, args.threads, workdir, args.timeout)
            print(f"{name} seed {seed}: {json.dumps(record)}", flush=True)
            merge({f"{name}/s{seed}": record})  # after every run: nothing lost
    TABLE_FILE.write_text(table(read_results()))
    print(TABLE_FILE.read_text())
    if not args.keep_runs:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
