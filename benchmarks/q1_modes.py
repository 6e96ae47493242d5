"""Q1 of BENCHMARKS.md: mode coverage on the 2-D mixtures (grid25, ring8). A script, not a test.

Runs families x data x seeds x network settings, each with the default trainer on the run's
seeded 100,000-point training set, then scores 50,000 samples with the core ``modes`` metric
(nearest mean, high quality under 3 std, captured when over half the fair share; the PacGAN
rule beside it; KL(P_g || uniform)). Records the step budget and the wall time of every run.

    python benchmarks/q1_modes.py --help
    python benchmarks/q1_modes.py --family sig gan-si --data grid25 ring8 --seeds 0 1 2 --setting sig-paper
    python benchmarks/q1_modes.py --family gan --steps 5000 --set lr_d=2e-4 --tag probe

Network settings:

* ``defaults``: none set: each family's own defaults, exactly as ``igm fit`` builds them (Q0);
* ``sig-paper``: generator 2x100 ReLU from 10-d noise; discriminator one hidden layer of 100;
* ``pacgan``: generator 4x400 ReLU + BatchNorm from 2-d noise; discriminator 3 maxout layers
  of 200 units with 5 pieces (no packing: the same critic sees single samples).

Families: ``gan`` (jsd, non-saturating), ``wgan-gp`` (gan with divergence=wasserstein),
``gan-kl`` (gan with divergence=kl), ``iwgan``, ``cgan`` (the mixture component of each
training point is its label: :func:`labelled`), ``gan-si``, ``wgan-gp-si`` (gan-si with
divergence=wasserstein), ``sig``, ``mmd``. Unless
``--steps``/``--batch-size`` are given, each family's own ``run_defaults`` decide the budget
(the settings ``igm fit FAMILY --data grid25`` runs). Results are merged into
``benchmarks/results/q1_modes.json`` (keyed by family, data, setting, seed, steps and tag),
a markdown table is written to ``benchmarks/results/q1_modes.md`` beside the published rows,
and one scatter PNG per family and data to ``benchmarks/results/q1_<family>_<data>.png``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
JSON_FILE = RESULTS / "q1_modes.json"
TABLE_FILE = RESULTS / "q1_modes.md"

SETTINGS: dict[str, dict[str, str]] = {
    "defaults": {},  # the family's own networks: what `igm fit FAMILY --data grid25` builds (Q0)
    "sig-paper": {"g_hidden": "100,100", "latent_dim": "10", "g_batchnorm": "false"},
    "pacgan": {"g_hidden": "400,400,400,400", "latent_dim": "2", "g_batchnorm": "true"},
}
CRITIC_SETTINGS: dict[str, dict[str, str]] = {
    "defaults": {},
    "sig-paper": {"d_hidden": "100", "d_activation": "relu"},
    "pacgan": {"d_hidden": "200,200,200", "d_activation": "maxout", "maxout_pieces": "5"},
}
FAMILIES: dict[str, tuple[str, dict[str, str]]] = {  # name -> (registered model, overrides)
    "gan": ("gan", {"divergence": "jsd", "loss": "non-saturating"}),
    "wgan-gp": ("gan", {"divergence": "wasserstein"}),
    "gan-kl": ("gan", {"divergence": "kl"}),
    "iwgan": ("iwgan", {}),
    "cgan": ("cgan", {}),  # the mixture component is the label (see labelled())
    "gan-si": ("gan-si", {}),
    "wgan-gp-si": ("gan-si", {"divergence": "wasserstein"}),
    "sig": ("sig", {}),
    "mmd": ("mmd", {}),
    "ebm": ("ebm", {}),
}
PUBLISHED = [  # grid25 rows of BENCHMARKS.md: (source, method, modes, hq, kl)
    ("SIG paper", "GAN", "4.0 ± 3.1", "0.36", "2.87"),
    ("SIG paper", "VAE", "25", "0.83", "0.32"),
    ("SIG paper", "VEEGAN", "23.2", "0.82", "0.38"),
    ("SIG paper", "Unrolled GAN", "6.2", "0.42", "1.97"),
    ("SIG paper", "SIG", "25 ± 0", "0.91 ± 0.04", "0.14 ± 0.07"),
    ("PacGAN (own rule, 2,500 samples)", "GAN", "17.3", "0.948", "0.70"),
    ("PacGAN (own rule, 2,500 samples)", "PacGAN4", "24.8", "0.936", "0.04"),
]


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (family, data, setting, seed) run and score it; returns the result record."""
    import torch

    torch.set_num_threads(job["threads"])
    from igm import config as cfg
    from igm.data import open_data
    from igm.metrics.modes import ModeCoverage
    from igm.registry import get_registry
    from igm.trainer import RunConfig, Trainer

    model_name, family_sets = FAMILIES[job["family"]]
    cls = get_registry().get("models", model_name)
    overrides = {**SETTINGS[job["setting"]], **family_sets, **job["sets"]}
    if model_name in ("gan", "gan-si", "iwgan", "cgan"):
        overrides = {**CRITIC_SETTINGS[job["setting"]], **overrides}
    overrides = {k: v for k, v in overrides.items() if k in cfg.field_types(cls.Config)}
    source = open_data(job["data"], job["seed"])
    if model_name == "cgan":
        source = labelled(source, job["data"], job["seed"])
    run_values = {**cls.run_defaults(source.info), **{k: v for k, v in job["run"].items() if v}}
    run_values = {k: v for k, v in run_values.items() if k in cfg.field_types(RunConfig)}
    run = cfg.build(  # the family's suggested run (steps, batch, lr decay), as `igm fit` would use it
        RunConfig,
        {**run_values, "seed": job["seed"], "device": "cpu", "log_every": 10**9, "sample_every": 0, "checkpoint_every": 0},
        what="run",
    )
    torch.manual_seed(run.seed)
    model = cls(cfg.build(cls.Config, overrides, what=model_name), source.info)
    trainer = Trainer(model, source, run, None, progress=False)
    trend, wall = [], 0.0
    if job.get("score_every"):  # the trend with steps: train in stretches, score 50,000 samples after each
        trainer.begin()
        while trainer.step < run.steps:
            t0 = time.perf_counter()
            trainer.train_step()
            while trainer.step < run.steps and trainer.step % job["score_every"]:
                trainer.train_step()
            wall += time.perf_counter() - t0
            if trainer.step < run.steps:
                model.eval()
                s = ModeCoverage()(model, source, n=50_000, seed=job["seed"])
                model.train()
                trend.append({"step": trainer.step, "train_wall_s": round(wall, 1),
                              **{k: s[k] for k in ("modes", "high_quality", "kl", "modes_pacgan")}})
                print(json.dumps(trend[-1]), flush=True)
    else:
        t0 = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - t0
    model.eval()
    t1 = time.perf_counter()
    scores = ModeCoverage()(model, source, n=50_000, seed=job["seed"])
    png = None
    if job["png"]:
        from igm.images import save_samples

        with torch.no_grad():
            x = model.generator.sample(2_500, generator=torch.Generator().manual_seed(1)).cpu()
        tag = f"_{job['tag']}" if job["tag"] else ""
        png = RESULTS / f"q1_{job['family']}_{job['data']}_{job['setting']}{tag}.png"
        save_samples(x, "points", png, reference=torch.tensor(source.info.extra["means"]))
    record = {
        **{k: job[k] for k in ("family", "data", "setting", "seed", "tag")},
        "steps": run.steps,
        "batch_size": run.batch_size,
        "lr_decay": run.lr_decay,
        "overrides": overrides,
        "config": cfg.to_dict(model.config),
        "train_wall_s": round(wall, 1),
        "eval_wall_s": round(time.perf_counter() - t1, 1),
        **scores,
        "png": None if png is None else png.name,
        **({"trend": trend} if trend else {}),
    }
    print(json.dumps({k: record[k] for k in ("family", "data", "setting", "seed", "steps", "tag", "modes",
                                             "high_quality", "kl", "modes_pacgan", "train_wall_s")}), flush=True)
    return record


def labelled(source: Any, data: str, seed: int) -> Any:
    """``source`` with each training point labelled by the mixture component it was drawn from.

    The same points as ``open_data(data, seed)`` (the same generator calls: ``sample`` is
    ``sample_with_modes`` without the modes); a source that already has labels is returned as is.
    """
    import dataclasses

    from igm.data.base import TensorSource
    from igm.data.toy import MIXTURES, held_out_seed

    if source.info.num_classes:
        return source
    mixture = MIXTURES[data]
    import torch

    x, y = mixture.sample_with_modes(source.split("train")[0].shape[0], torch.Generator().manual_seed(seed))
    xt, yt = mixture.sample_with_modes(source.split("test")[0].shape[0], torch.Generator().manual_seed(held_out_seed(seed)))
    if not torch.equal(x, source.split("train")[0]):
        raise RuntimeError(f"the labelled {data} points differ from the source's")
    info = dataclasses.replace(source.info, num_classes=mixture.num_modes)
    return TensorSource(info, x, y, xt, yt)


def key(r: dict[str, Any]) -> tuple:
    return (r["family"], r["data"], r["setting"], r["seed"], r["steps"], r.get("tag", ""))


def load_results() -> list[dict[str, Any]]:
    if JSON_FILE.exists():
        return json.loads(JSON_FILE.read_text())["runs"]
    return []


def save_results(records: list[dict[str, Any]]) -> None:
    """Merge ``records`` into the JSON (under a lock: several invocations may run side by side)."""
    import fcntl

    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "q1_modes.lock.tmp", "w") as lock:  # *.tmp: ignored by git
        fcntl.flock(lock, fcntl.LOCK_EX)
        _save_results(records)


def _save_results(records: list[dict[str, Any]]) -> None:
    merged = {key(r): r for r in load_results()}
    merged.update({key(r): r for r in records})
    runs = sorted(merged.values(), key=lambda r: tuple(str(v) for v in key(r)))
    doc = {
        "protocol": "BENCHMARKS.md Q1: 100,000 training points per seed, 50,000 samples scored, core 'modes' metric",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = JSON_FILE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, JSON_FILE)
    TABLE_FILE.write_text(table(runs))


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def table(runs: list[dict[str, Any]]) -> str:
    """Markdown: ours (mean ± std over seeds per family/data/setting/steps/tag), then the published rows."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["data"], r["family"], r["setting"], r["steps"], r.get("tag", "")), []).append(r)
    lines = [
        "| data | family | network | tag | steps | seeds | modes | HQ | KL | modes (PacGAN rule) | train s/seed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (data, family, setting, steps, tag), rs in sorted(groups.items()):
        kls = [r["kl"] for r in rs if r["kl"] is not None]
        lines.append(
            f"| {data} | {family} | {setting} | {tag} | {steps} | {len(rs)} | "
            f"{_ms([r['modes'] for r in rs])} / {rs[0]['num_modes']} | {_ms([r['high_quality'] for r in rs])} | "
            f"{_ms(kls) if kls else 'n/a'} | {_ms([r['modes_pacgan'] for r in rs])} | "
            f"{_ms([r['train_wall_s'] for r in rs])} |"
        )
    lines += ["", "Published (grid25):", "", "| source | method | modes | HQ | KL |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {m} | {a} | {b} | {c} |" for s, m, a, b, c in PUBLISHED]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", nargs="+", default=["sig", "gan-si"], choices=sorted(FAMILIES))
    parser.add_argument("--data", nargs="+", default=["grid25", "ring8"], choices=["grid25", "ring8"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--setting", nargs="+", default=["sig-paper"], choices=sorted(SETTINGS))
    parser.add_argument("--steps", type=int, default=0, help="step budget (default: the family's run_defaults)")
    parser.add_argument("--batch-size", type=int, default=0, help="batch size (default: the family's run_defaults)")
    parser.add_argument("--lr-decay", default="", choices=["", "none", "cosine", "linear"],
                        help="learning-rate schedule (default: the family's run_defaults)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="model override key=value")
    parser.add_argument("--score-every", type=int, default=0, help="also score every N steps (the trend; printed and kept)")
    parser.add_argument("--tag", default="", help="label of this configuration in the results")
    parser.add_argument("--workers", type=int, default=1, help="parallel runs (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--no-png", action="store_true", help="skip the scatter PNGs")
    parser.add_argument("--no-save", action="store_true", help="print only; do not merge into the JSON")
    args = parser.parse_args(argv)
    sets = dict(s.split("=", 1) for s in args.sets)
    jobs = [
        {"family": f, "data": d, "setting": s, "seed": seed, "sets": sets, "tag": args.tag, "threads": args.threads, "score_every": args.score_every,
         "run": {"steps": args.steps, "batch_size": args.batch_size, "lr_decay": args.lr_decay}, "png": not args.no_png and i == 0}
        for f in args.family for d in args.data for s in args.setting for i, seed in enumerate(args.seeds)
    ]
    if args.workers > 1:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            records = []
            for r in pool.imap_unordered(run_one, jobs):
                records.append(r)
                if not args.no_save:
                    save_results([r])
    else:
        records = []
        for job in jobs:
            records.append(run_one(job))
            if not args.no_save:
                save_results([records[-1]])
    print(table(records), end="")


if __name__ == "__main__":
    main()
