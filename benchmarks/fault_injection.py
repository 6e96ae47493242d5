"""Kill runs at random moments and check that every one resumes, bit-identical to an unbroken run.

A script, not a test. For each family (gan, vae, rbm with persistent chains, sig) it trains one
unbroken reference run, then repeats: start the same run, SIGKILL it after a random delay
(often inside a checkpoint write: checkpoints are written every step), and resume it with
``igm fit --resume`` — itself killed at random with probability ``--rekill`` — until a resume
finishes. The finished run's ``model.safetensors``, ``trainer.safetensors`` and logged losses
must equal the reference's exactly. Each kill is classified by what it left: a temporary file
(killed inside a write), model and trainer files of different steps (killed between the two
writes), no checkpoint yet, no ``config.toml`` yet (killed while starting: the user's recourse,
and the script's, is the same command again, without ``--resume``), or a clean pair.

    python benchmarks/fault_injection.py --kills 100
    python benchmarks/fault_injection.py --family gan --kills 10 --steps 30

Writes ``benchmarks/results/fault_injection.json`` and prints one line per family and a total.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file

RESULTS = Path(__file__).resolve().parent / "results"
STARTUP_SHARE = 0.2
FAMILIES = {  # family -> (data source, model settings): wide layers, so that checkpoints take a while to write
    "gan": ("grid25", {"g_hidden": "[1024, 1024]", "d_hidden": "[1024]"}),
    "vae": ("binarized-digits", {"hidden": "[1024, 1024]"}),
    "rbm": ("binarized-digits", {"persistent": "true", "hidden": "4096"}),
    "sig": ("ring8", {"g_hidden": "[1024, 1024]"}),
}


def write_config(path: Path, family: str, steps: int, batch: int) -> None:
    data, sets = FAMILIES[family]
    model = "".join(f'{k} = {v if v in ("true", "false") or v.isdigit() or v.startswith("[") else json.dumps(v)}\n'
                    for k, v in sets.items())
    path.write_text(
        f'[run]\nmodel = "{family}"\ndata = "{data}"\nsteps = {steps}\nbatch_size = {batch}\nseed = 3\n'
        f'device = "cpu"\nlog_every = 1\nsample_every = 0\ncheckpoint_every = 1\n\n[model]\n{model}'
    )


def igm(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "igm", *args, "-q"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def step_of(path: Path) -> int | None:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return int(fh.metadata()["igm.step"])
    except Exception:  # noqa: BLE001 - a missing or damaged file is itself what is being classified
        return None


def classify(run: Path) -> str:
    if not (run / "config.toml").exists():
        return "before the run was set up"
    if list(run.glob(".*.tmp")):
        return "inside a write"
    trainer, model = step_of(run / "trainer.safetensors"), step_of(run / "model.safetensors")
    if trainer is None and model is None:
        return "before the first checkpoint"
    if trainer != model:
        return "between the two files"
    return "between checkpoints"


def losses(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if k not in ("steps_per_s", "elapsed_s")} for row in rows]


def same_run(a: Path, b: Path) -> bool:
    import torch

    for name in ("model.safetensors", "trainer.safetensors"):
        ta, tb = load_file(a / name), load_file(b / name)
        if ta.keys() != tb.keys() or not all(torch.equal(ta[k], tb[k]) for k in ta):
            return False
    return losses(a) == losses(b)


def trial(root: Path, config: Path, reference: Path, window: tuple[float, float], rng: random.Random,
          rekill: float) -> dict:
    """One run killed (and its resumes killed again, with chance ``rekill``) until it finishes.

    ``window`` is (start-up time, whole run time) of the reference run. A share ``STARTUP_SHARE``
    of kills land during start-up; the rest once the process trains, where it writes a
    checkpoint every step.
    """
    run = root / "trial"
    shutil.rmtree(run, ignore_errors=True)
    kills: list[str] = []
    proc = igm("fit", "--config", str(config), "--out", str(run), cwd=root)
    ready, span = window
    while True:
        if rng.random() < STARTUP_SHARE:  # anywhere in start-up: imports, data, the step-0 checkpoint
            delay = rng.uniform(0.0, ready)
        else:  # once it trains, where checkpoints are written every step
            started = time.perf_counter()
            while proc.poll() is None and not (run / "trainer.safetensors").exists() and time.perf_counter() - started < span:
                time.sleep(0.005)
            delay = rng.uniform(0.0, max(0.05, span - ready))
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append(classify(run))
        else:
            if proc.returncode == 0:
                break
            return {"kills": kills, "resumed": False, "identical": False, "error": proc.stderr.read().strip()[-300:]}
        if (run / "config.toml").exists():
            proc = igm("fit", "--resume", "--out", str(run), cwd=root)
        else:  # stopped before it wrote its config: what a user does is run the same command again
            proc = igm("fit", "--config", str(config), "--out", str(run), cwd=root)
        if rng.random() >= rekill:  # this resume runs to the end
            proc.wait()
            if proc.returncode != 0:
                return {"kills": kills, "resumed": False, "identical": False, "error": proc.stderr.read().strip()[-300:]}
            break
    return {"kills": kills, "resumed": True, "identical": same_run(reference, run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--kills", type=int, default=100, help="kills in all, shared among the families")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rekill", type=float, default=0.3, help="chance that a resume is killed too")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "steps": args.steps, "families": {}}
    per_family = -(-args.kills // len(args.family))
    with tempfile.TemporaryDirectory(prefix="igm-faults-") as tmp:
        for family in args.family:
            root = Path(tmp) / family
            root.mkdir()
            config = root / "run.toml"
            write_config(config, family, args.steps, args.batch_size)
            t0 = time.perf_counter()
            ref = igm("fit", "--config", str(config), "--out", str(root / "reference"), cwd=root)
            while ref.poll() is None and not (root / "reference" / "trainer.safetensors").exists():
                time.sleep(0.01)
            ready = time.perf_counter() - t0  # start-up: imports, data, model, step-0 checkpoint
            if ref.wait() != 0:
                raise SystemExit(f"{family}: the reference run failed: {ref.stderr.read()[-500:]}")
            span = time.perf_counter() - t0
            trials, kills = [], 0
            while kills < per_family:
                result = trial(root, config, root / "reference", (ready, span), rng, args.rekill)
                trials.append(result)
                kills += len(result["kills"])
            where: dict[str, int] = {}
            for t in trials:
                for w in t["kills"]:
                    where[w] = where.get(w, 0) + 1
            summary = {
                "trials": len(trials), "kills": kills, "where": where, "run_s": round(span, 1),
                "resumed": sum(t["resumed"] for t in trials), "identical": sum(t["identical"] for t in trials),
                "errors": [t["error"] for t in trials if "error" in t],
            }
            report["families"][family] = summary
            print(f"{family:<4} {kills} kills in {len(trials)} runs ({where}); resumed {summary['resumed']}/{len(trials)}, "
                  f"bit-identical {summary['identical']}/{len(trials)}", flush=True)
    fams = report["families"].values()
    total = {k: sum(f[k] for f in fams) for k in ("trials", "kills", "resumed", "identical")}
    report["total"] = total
    print(f"total: {total['kills']} kills in {total['trials']} runs; resumed {total['resumed']}/{total['trials']}, "
          f"bit-identical {total['identical']}/{total['trials']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fault_injection.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
