"""Q3 of BENCHMARKS.md, the VAE part: VAE, IWAE (k = 5, 50) and AAVAE on binarized MNIST. A script, not a test.

Every model is the IWAE paper's one-stochastic-layer network (two deterministic layers of 200
tanh units each side, 50 latent units, Bernoulli decoder), trained with the default igm
Trainer on dynamically binarized MNIST (fresh bits every batch) for the same number of passes
over the 60,000 training images, then scored on the fixed binary test split by the core
``nll`` machinery: test NLL = -L_5000 (5,000 importance samples) and the ELBO (mean of the same
log weights), each with its standard error over the test examples. The test set can be cut to
its first N examples (``--eval-examples``) to keep the cost modest; the JSON records N.

    python benchmarks/q3_vae.py --models vae iwae5 iwae50 --epochs 3
    python benchmarks/q3_vae.py --models aavae --epochs 3
    python benchmarks/q3_vae.py --table   # only rewrite the markdown table and the PNG

Results are merged into ``benchmarks/results/q3_vae.json`` (keyed by model and epochs), a
markdown table is written to ``benchmarks/results/q3_vae.md`` beside the published numbers,
and one PNG (``q3_vae_samples.png``: a row of decoder means per model) beside it. Run it with
``nice -n 10``: it pins torch to one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"  # ../shared beside the repository
from _bench import RESULTS_DIR, ROOT, machine_info  # noqa: E402

from igm import checkpoint  # noqa: E402
from igm.data import open_data  # noqa: E402
from igm.metrics.likelihood import likelihood_summary, mean_and_se, per_example_bounds  # noqa: E402
from igm.testing import build_model  # noqa: E402
from igm.trainer import RunConfig, Trainer  # noqa: E402

MODELS = {  # name -> (family, config overrides)
    "vae": ("vae", {"k": "1"}),
    "iwae5": ("vae", {"k": "5"}),
    "iwae50": ("vae", {"k": "50"}),
    "aavae": ("aavae", {}),
}
PUBLISHED = {  # BENCHMARKS.md Q3: test NLL after 3,280 passes (IWAE paper), test ELBO (Hu et al.)
    "vae": "NLL 86.76 (IWAE paper, 3,280 passes); ELBO -92.53 (Hu et al.)",
    "iwae5": "NLL 85.54",
    "iwae50": "NLL 84.78",
    "aavae": "ELBO -92.42 (Hu et al.)",
}
TRAIN_SIZE = 60_000
JSON_PATH = RESULTS_DIR / "q3_vae.json"
MD_PATH = RESULTS_DIR / "q3_vae.md"
PNG_PATH = RESULTS_DIR / "q3_vae_samples.png"
RUNS = ROOT / "runs" / "q3_vae"  # checkpoints (gitignored)


def run_one(name: str, args: argparse.Namespace) -> dict:
    family, overrides = MODELS[name]
    source = open_data(f"binarized-mnist:{args.mnist}", args.seed)
    extra = dict(kv.split("=", 1) for kv in args.sets)
    model = build_model(family, source.info, {**overrides, "lr": str(args.lr), **extra}, seed=args.seed)
    steps = args.epochs * TRAIN_SIZE // args.batch_size
    run = RunConfig(
        steps=steps, batch_size=args.batch_size, seed=args.seed, device="cpu",
        log_every=max(1, TRAIN_SIZE // args.batch_size), sample_every=0, checkpoint_every=0,
    )
    out = RUNS / run_key(name, args)
    if out.exists():
        for f in out.iterdir():
            f.unlink() if f.is_file() else None
    t0, c0 = time.perf_counter(), time.process_time()
    last = Trainer(model, source, run, out_dir=out, progress=False).fit()
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    x, y = source.split("test")
    n = args.eval_examples or x.shape[0]
    t0 = time.perf_counter()
    bound, elbo = per_example_bounds(model, x[:n], None, k=args.k_eval, seed=0)
    eval_s = time.perf_counter() - t0
    save_file({"bound": bound, "elbo": elbo}, str(out / "test_bounds.safetensors"))
    scores = likelihood_summary(bound, elbo, args.k_eval)
    result = {
        "model": name,
        "tag": args.tag,
        "family": family,
        "config": {k: v for k, v in vars(model.config).items()},
        "epochs": args.epochs,
        "steps": steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "train_wall_s": round(train_s, 1),
        "train_cpu_s": round(train_cpu, 1),
        "eval_wall_s": round(eval_s, 1),
        "last_log": last,
        "test": scores,
        "checkpoint": str((out / checkpoint.MODEL_FILE).relative_to(ROOT)),
        "machine": machine_info(),
    }
    print(f"{name}: {args.epochs} epochs in {train_s:.0f}s; test NLL {scores['nll']:.2f} ± {scores['nll_se']:.2f}, "
          f"ELBO {scores['elbo']:.2f} ± {scores['elbo_se']:.2f} ({n} test images, k={args.k_eval})", flush=True)
    return result


def run_key(name: str, args: argparse.Namespace) -> str:
    return f"{name}{'-' + args.tag if args.tag else ''}_e{args.epochs}"


def load_results() -> dict:
    return json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {"runs": {}}


def write_table(results: dict) -> None:
    rows = [
        "| model | passes | steps (batch) | train wall (CPU) | test NLL (k=5000) | test ELBO | published |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in sorted(results["runs"], key=lambda k: (results["runs"][k]["epochs"], list(MODELS).index(results["runs"][k]["model"]))):
        r = results["runs"][key]
        t = r["test"]
        rows.append(
            f"| {r['model']}{' (' + r['tag'] + ')' if r.get('tag') else ''} | {r['epochs']} | {r['steps']} ({r['batch_size']}) | "
            f"{r['train_wall_s'] / 60:.1f} min ({r['train_cpu_s'] / 60:.1f}) | "
            f"{t['nll']:.2f} ± {t['nll_se']:.2f} | {t['elbo']:.2f} ± {t['elbo_se']:.2f} | {PUBLISHED[r['model']]} |"
        )
    rows += ["", "Paired differences on the same test images (per-image difference, mean ± standard error):", ""]
    for key, r in sorted(results["runs"].items()):
        base = f"vae_e{r['epochs']}"
        if r["model"] == "vae" or base not in results["runs"]:
            continue
        mine, ref = per_example(key), per_example(base)
        if mine is None or ref is None or mine["bound"].shape != ref["bound"].shape:
            continue
        d_nll, se_nll = mean_and_se(ref["bound"] - mine["bound"])
        d_elbo, se_elbo = mean_and_se(mine["elbo"] - ref["elbo"])
        rows.append(f"- {key.rsplit('_e', 1)[0]} − vae at {r['epochs']} passes: NLL {d_nll:+.2f} ± {se_nll:.2f}, "
                    f"ELBO {d_elbo:+.2f} ± {se_elbo:.2f}")
        r["paired_vs_vae"] = {"nll_diff": d_nll, "nll_diff_se": se_nll, "elbo_diff": d_elbo, "elbo_diff_se": se_elbo}
    examples = {r["test"]["examples"] for r in results["runs"].values()}
    rows.append("")
    rows.append(f"Test set: the first {', '.join(map(str, sorted(examples)))} images of the fixed binary MNIST test split; "
                "± is the standard error over the test images.")
    MD_PATH.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


def per_example(key: str) -> dict | None:
    path = RUNS / key / "test_bounds.safetensors"
    return load_file(str(path)) if path.exists() else None


def write_png(results: dict) -> None:
    from igm.images import image_grid, save_png

    rows = []
    for key in sorted(results["runs"]):
        path = ROOT / results["runs"][key]["checkpoint"]
        if not path.exists():
            continue
        model = checkpoint.load(path)
        with torch.no_grad():
            rows.append(model.generator.sample(10, generator=torch.Generator().manual_seed(0)))
    if rows:
        save_png(image_grid(torch.cat(rows), nrow=10, scale=2), PNG_PATH)
        print(f"wrote {PNG_PATH} (rows: {', '.join(sorted(results['runs']))})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["vae", "iwae5", "iwae50"], choices=list(MODELS))
    p.add_argument("--epochs", type=int, default=3, help="passes over the 60,000 training images")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k-eval", type=int, default=5000)
    p.add_argument("--eval-examples", type=int, default=1000, help="first N test images (0: all 10,000)")
    p.add_argument("--mnist", default=os.environ.get("IGM_MNIST", str(ROOT_MNIST)))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", dest="sets", action="append", default=[], help="model override key=value")
    p.add_argument("--tag", default="", help="label of this configuration in the results")
    p.add_argument("--table", action="store_true", help="only rewrite the table and PNG from the JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = load_results()
    if not args.table:
        for name in args.models:
            r = run_one(name, args)
            results = load_results()  # merge with runs another invocation finished meanwhile
            results["runs"][run_key(name, args)] = r
            r["command"] = "nice -n 10 .venv/bin/python benchmarks/q3_vae.py " + " ".join(argv or sys.argv[1:])
            JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
            JSON_PATH.write_text(json.dumps(results, indent=2) + "\n")
    write_table(results)
    if JSON_PATH.exists() or results["runs"]:
        JSON_PATH.write_text(json.dumps(results, indent=2) + "\n")
    write_png(results)


if __name__ == "__main__":
    main()
