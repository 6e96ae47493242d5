"""Q4 of BENCHMARKS.md: cGAN label accuracy and IWGAN against GAN by classifier IS on MNIST. A script.

    python benchmarks/q4_conditional.py train --family cgan gan iwgan --seeds 0 --steps 4000
    python benchmarks/q4_conditional.py eval

``train`` runs the default trainer on ``mnist`` with the same DCGAN networks (28×28, sizes
Kg = Kd = 1), Adam 2e-4, β1 0.5, batch 64 for every family, keeping checkpoints every ``--every``
steps under ``runs/q4/<family>_s<seed>/`` (git-ignored). ``eval`` scores every checkpoint with the
core metrics and the cached MNIST judge: ``label-accuracy`` (cGAN; 10,000 samples, balanced
labels), ``classifier-is`` (10,000 samples, mean of 10 splits) and ``classifier-fid`` (against the
10,000 test digits) for all, plus the real test digits' IS (the ceiling) and writes
``benchmarks/results/q4_conditional.{json,md}`` beside Hu et al.'s figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
RESULTS = BENCH_DIR / "results"
RUNS = BENCH_DIR.parent / "runs" / "q4"
MNIST = os.environ.get("IGM_MNIST", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"))
PROTOCOL = {"lr_g": "2e-4", "lr_d": "2e-4", "beta1": "0.5", "network": "dcgan", "g_width": "1", "d_width": "1"}
FAMILIES = {"cgan": {}, "gan": {}, "iwgan": {}}  # registered model -> extra overrides
PUBLISHED = [
    ("Hu et al. 2018", "CGAN label accuracy", "0.985"),
    ("Hu et al. 2018", "IWCGAN label accuracy", "0.987"),
    ("Hu et al. 2018", "GAN classifier IS", "8.34"),
    ("Hu et al. 2018", "IWGAN classifier IS", "8.45"),
    ("BENCHMARKS.md", "real MNIST classifier IS", "≈ 9.9"),
]


def score_run(out: Path, source: Any, judge: Any, n: int) -> list[dict[str, Any]]:
    """IS, FID (and label accuracy for conditional models) of every checkpoint of one run."""
    import torch
    from _bench import score_checkpoints

    from igm import checkpoint
    from igm.metrics.classifier import draw, frechet_distance, inception_score, label_accuracy

    real_features = judge.features(source.split("test")[0])
    seed = json.loads((out / "train.json").read_text())["seed"]

    def score(path: Path) -> dict[str, Any]:
        model = checkpoint.load(path)
        x = draw(model, n, seed)
        is_mean, is_std = inception_score(judge.probs(x), splits=10)
        scores = {"inception_score": is_mean, "is_std": is_std, "fid": frechet_distance(real_features, judge.features(x))}
        if model.generator.num_classes == 10:
            labels = torch.arange(n) % 10  # balanced
            scores["label_accuracy"] = label_accuracy(draw(model, n, seed, labels), labels, judge)
        return scores

    return [
        {"family": r["model"], "seed": r["seed"], "run_steps": r["steps"], "step": r["step"],
         "train_wall_s": r["train_wall_s"], "samples": n, **scores}
        for r, scores in score_checkpoints(out, f"{judge.key}:{n}", score)
    ]


def table(rows: list[dict[str, Any]], real_is: tuple[float, float], judge_accuracy: float) -> str:
    lines = [
        f"Judge test accuracy {judge_accuracy:.4f}; real test digits: classifier IS {real_is[0]:.3f} ± {real_is[1]:.3f} (10 splits).",
        "", "| family | seed | steps | label accuracy | classifier IS | classifier FID | train s |", "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["family"], r["seed"], r["step"])):
        acc = f"{r['label_accuracy']:.4f}" if "label_accuracy" in r else "—"
        lines.append(f"| {r['family']} | {r['seed']} | {r['step']} | {acc} | {r['inception_score']:.3f} ± {r['is_std']:.3f} | "
                     f"{r['fid']:.2f} | {r['train_wall_s']:.0f} |")
    lines += ["", "| source | figure | value |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in PUBLISHED]
    return "\n".join(lines) + "\n"


def evaluate_all(n: int) -> None:
    from _bench import machine_info

    from igm.data import open_data
    from igm.metrics.classifier import inception_score, judge_for

    source = open_data(f"mnist:{MNIST}")
    judge = judge_for(source)
    real_is = inception_score(judge.probs(source.split("test")[0]), splits=10)
    rows = []
    for out in sorted(RUNS.glob("*_s*")):
        if (out / "train.json").exists():
            rows += score_run(out, source, judge, n)
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "q4_conditional", "machine": machine_info(), "judge_accuracy": judge.test_accuracy,
           "real_test_is": {"mean": real_is[0], "std": real_is[1]}, "runs": rows}
    (RESULTS / "q4_conditional.json").write_text(json.dumps(doc, indent=1) + "\n")
    (RESULTS / "q4_conditional.md").write_text(table(rows, real_is, judge.test_accuracy))
    print((RESULTS / "q4_conditional.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--family", nargs="+", default=sorted(FAMILIES), choices=sorted(FAMILIES))
    tr.add_argument("--seeds", nargs="+", type=int, default=[0])
    tr.add_argument("--steps", type=int, default=4000)
    tr.add_argument("--every", type=int, default=2000)
    ev = sub.add_parser("eval")
    ev.add_argument("-n", type=int, default=10_000)
    for p in (tr, ev):
        p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.command == "train":
        from _bench import train_with_checkpoints

        for seed in args.seeds:
            for family in args.family:
                values = {**PROTOCOL, **FAMILIES[family]}
                train_with_checkpoints(family, values, f"mnist:{MNIST}", seed, args.steps, args.every,
                                       RUNS / f"{family}_s{seed}", {"family": family})
    else:
        evaluate_all(args.n)


if __name__ == "__main__":
    sys.exit(main())
