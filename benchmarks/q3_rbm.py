"""Q3 of BENCHMARKS.md, the RBM part: igm's RBM (CD-1, CD-k, PCD) against scikit-learn's BernoulliRBM. A script.

Every model has 500 hidden units (``--hidden`` changes it) and trains on dynamically binarized
MNIST (fresh bits for every batch) with the same settings: batch 100, learning rate 0.1 (plain
SGD on the batch mean, no momentum or weight decay: scikit-learn's update), weights initialised
N(0, 0.01²), biases 0,
for the same number of passes over the 60,000 training images. ``--lr-decay linear|cosine``: the
trainer's decay of the learning rate to 0 over the run (``RunConfig.lr_decay``), given to
scikit-learn too (its ``learning_rate`` set from the same ``lr_factor`` before each
``partial_fit``); such runs are separate rows (keys ``pcd-linear@10``, ``sklearn-linear@10``).

- ``cd1``, ``cdK`` (``--cd-k``, default 10), ``pcd``: igm's ``rbm`` family with the default
  Trainer (``persistent=true`` for PCD-1, with as many persistent chains as the batch size).
- ``sklearn``: ``BernoulliRBM(n_components=500, learning_rate=0.1, batch_size=100)`` fed the
  very same stream of binarized batches through ``partial_fit`` (its algorithm is PCD-1,
  "SML", with batch-size persistent chains; it has no CD-k).

All of them are scored by the same ``ais`` metric of the core (``igm.metrics.rbm``): 100 AIS
runs with the Q3 β schedule (0→0.5 step 1e-3, 0.5→0.9 step 1e-4, 0.9→1 step 1e-5), seed 0,
base-rate model from the training pixel means; test log-likelihood = −mean F(v_test) − log Ẑ on
the 10,000 fixed binary test images, with its standard error (AIS delta method ⊕ the standard
error of the mean free energy). Published: CD-25, 500 hidden units, −86.34 (Salakhutdinov &
Murray 2008, after far more passes).

    python benchmarks/q3_rbm.py --models cd1 pcd sklearn --epochs 10
    python benchmarks/q3_rbm.py --models cdK --cd-k 10 --epochs 10
    python benchmarks/q3_rbm.py --models pcd sklearn --lr-decay linear   # both decay lr to 0
    python benchmarks/q3_rbm.py --table    # only rewrite the markdown table and the PNG

Results are merged into ``benchmarks/results/q3_rbm.json`` (keyed by model and epochs); a
markdown table goes to ``benchmarks/results/q3_rbm.md`` and one PNG of samples
(``q3_rbm_samples.png``: one row per model, 1,000 Gibbs sweeps from uniform bits, visible
probabilities of the last sweep) beside it. Weights are kept in ``igm_q3_rbm`` under the temporary folder for
``--table``. Run it with ``nice -n 10``: it pins torch and BLAS to one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import MNIST, RESULTS_DIR, machine_info  # noqa: E402

from igm.data import open_data  # noqa: E402
from igm.energy import RBMParams, bernoulli, gibbs  # noqa: E402
from igm.metrics.rbm import AISLogLikelihood, PseudoLikelihood  # noqa: E402
from igm.testing import build_model  # noqa: E402
from igm.trainer import RunConfig, Trainer, lr_factor  # noqa: E402

HIDDEN, BATCH, LR, SEED = 500, 100, 0.1, 0
EPOCH_STEPS = 60_000 // BATCH
WEIGHTS = Path(tempfile.gettempdir()) / "igm_q3_rbm"
RESULT = RESULTS_DIR / "q3_rbm.json"
PUBLISHED = "-86.34 (CD-25, 500 hidden; Salakhutdinov & Murray 2008)"


@dataclass
class Scored:
    """What the core metrics need from a model: its name and rbm_params()."""

    name: str
    params: RBMParams

    def rbm_params(self) -> RBMParams:
        return self.params


def train_igm(
    source, overrides: dict[str, str], epochs: int, seed: int, lr_decay: str = "none", hidden: int = HIDDEN
) -> tuple[RBMParams, float]:
    model = build_model("rbm", source.info, {"hidden": str(hidden), "lr": str(LR), **overrides}, seed=seed)
    run = RunConfig(
        steps=epochs * EPOCH_STEPS, batch_size=BATCH, seed=seed, log_every=EPOCH_STEPS, sample_every=0, checkpoint_every=0, device="cpu", lr_decay=lr_decay
    )
    t0 = time.perf_counter()
    Trainer(model, source, run, out_dir=None, progress=False).fit()
    return model.rbm_params().detach(torch.float64), time.perf_counter() - t0


def train_sklearn(source, epochs: int, seed: int, lr_decay: str = "none", hidden: int = HIDDEN) -> tuple[RBMParams, float]:
    from sklearn.neural_network import BernoulliRBM

    rbm = BernoulliRBM(n_components=hidden, learning_rate=LR, batch_size=BATCH, random_state=seed)
    stream = source.stream(BATCH, seed)  # the same binarized batches igm's trainer draws
    steps = epochs * EPOCH_STEPS
    t0 = time.perf_counter()
    for step in range(steps):
        x, _ = next(stream)
        rbm.learning_rate = LR * lr_factor(lr_decay, step, steps)  # the trainer's schedule, read by each partial_fit
        rbm.partial_fit(x.flatten(1).double().numpy())
    return RBMParams.from_sklearn(rbm), time.perf_counter() - t0


def model_settings(cd_k: int) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "cd1": ("igm CD-1", {"persistent": "false", "cd_k": "1"}),
        f"cd{cd_k}": (f"igm CD-{cd_k}", {"persistent": "false", "cd_k": str(cd_k)}),
        "pcd": ("igm PCD-1", {"persistent": "true", "cd_k": "1"}),
        "sklearn": ("scikit-learn BernoulliRBM (PCD-1)", {}),
    }


def weights_path(key: str) -> Path:
    return WEIGHTS / f"{key}.safetensors"


def save_params(p: RBMParams, key: str) -> None:
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    save_file({"W": p.W.contiguous(), "b": p.b, "c": p.c}, str(weights_path(key)))


def load_params(key: str) -> RBMParams:
    t = load_file(str(weights_path(key)))
    return RBMParams(t["W"], t["b"], t["c"])


def load_results() -> dict:
    return json.loads(RESULT.read_text()) if RESULT.exists() else {"runs": {}}


def write_table(results: dict) -> str:
    lines = [
        "| model | seed | passes | train wall (s) | test log-likelihood (AIS) ± se | log Ẑ ± se | pseudo-likelihood | published |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(results["runs"].values(), key=lambda r: (r["epochs"], r.get("lr_decay", "none") != "none", r["order"], r.get("seed", SEED))):
        a = row["ais"]
        lines.append(
            f"| {row['label']} | {row.get('seed', SEED)} | {row['epochs']} | {row['train_seconds']:.0f} | {a['log_likelihood']:.2f} ± {a['log_likelihood_se']:.2f} "
            f"| {a['log_z']:.2f} ± {a['log_z_se']:.2f} | {row['pseudo_likelihood']['pseudo_likelihood']:.2f} | "
            f"{PUBLISHED if row['key'].startswith('cd') and row['key'] != 'cd1' else ''} |"
        )
    table = "\n".join(lines) + "\n\n" + summary_table(results)
    (RESULTS_DIR / "q3_rbm.md").write_text(table)
    return table


def summary_table(results: dict) -> str:
    """Mean ± sd over training seeds per model, and igm PCD-1 − scikit-learn with its standard error."""
    groups: dict[tuple[int, str, str], dict[int, float]] = {}
    for row in results["runs"].values():
        key = (row["epochs"], row.get("lr_decay", "none"), row["key"])
        groups.setdefault(key, {})[row.get("seed", SEED)] = row["ais"]["log_likelihood"]
    lines = ["| passes | lr decay | model | seeds | mean ± sd | igm − scikit-learn: unpaired ± se; paired by seed ± se |", "|---|---|---|---|---|---|"]
    for (epochs, decay, key), by_seed in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "none", kv[0][2])):
        x = np.array(list(by_seed.values()))
        sd = f"{x.std(ddof=1):.2f}" if len(x) > 1 else "—"
        diff = ""
        other = groups.get((epochs, decay, "sklearn"))
        if key == "pcd" and other and len(x) > 1 and len(other) > 1:
            y = np.array(list(other.values()))
            se = np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
            common = sorted(set(by_seed) & set(other))
            d = np.array([by_seed[s] - other[s] for s in common])
            paired = f"{d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f} ({len(d)} pairs)" if len(d) > 1 else "—"
            diff = f"{x.mean() - y.mean():+.2f} ± {se:.2f}; {paired}"
        lines.append(f"| {epochs} | {decay} | {key} | {len(x)} | {x.mean():.2f} ± {sd} | {diff} |")
    return "\n".join(lines) + "\n"


def write_samples(results: dict) -> Path | None:
    from igm.images import image_grid, save_png

    rows = []
    for row in sorted(results["runs"].values(), key=lambda r: (r["epochs"], r.get("lr_decay", "none") != "none", r["order"], r.get("seed", SEED))):
        if row.get("seed", SEED) != SEED or row.get("lr_decay", "none") != "none" or not weights_path(row["weights"]).exists():
            continue  # one row per model: the seed-0 runs at a constant lr
        p = load_params(row["weights"]).detach(torch.float32)
        gen = torch.Generator().manual_seed(0)
        start = bernoulli(torch.full((12, p.num_visible), 0.5), gen)
        rows.append(gibbs(p, start, 1000, gen)[1])
    if not rows:
        return None
    x = torch.cat(rows).reshape(-1, 1, 28, 28)
    return save_png(image_grid(x, nrow=12, scale=2), RESULTS_DIR / "q3_rbm_samples.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cd-k", type=int, default=10)
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=SEED, help="training seed (init, batches, bits); AIS always uses seed 0")
    parser.add_argument("--lr-decay", default="none", choices=["none", "linear", "cosine"], help="the trainer's lr schedule, given to scikit-learn too")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="hidden units of every model (run keys get -hN off 500)")
    parser.add_argument("--table", action="store_true", help="only rewrite the table and the PNG")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    settings = model_settings(args.cd_k)
    if not args.table:
        if not MNIST.exists():
            sys.exit(f"MNIST not found at {MNIST}")
        source = open_data(f"binarized-mnist:{MNIST}", SEED)
        for key in args.models:
            if key not in settings:
                sys.exit(f"unknown model {key}: choose from {', '.join(settings)}")
            label, overrides = settings[key]
            if key == "sklearn":
                params, seconds = train_sklearn(source, args.epochs, args.seed, args.lr_decay, args.hidden)
            else:
                params, seconds = train_igm(source, overrides, args.epochs, args.seed, args.lr_decay, args.hidden)
            decay = "" if args.lr_decay == "none" else f"-{args.lr_decay}"
            run_key = f"{key}{decay}@{args.epochs}" + (f"-seed{args.seed}" if args.seed != SEED else "")
            run_key += f"-h{args.hidden}" if args.hidden != HIDDEN else ""
            save_params(params, run_key)
            t0 = time.perf_counter()
            ais = AISLogLikelihood()(Scored(label, params), source, n=args.ais_runs, seed=0)
            ais_seconds = time.perf_counter() - t0
            pl = PseudoLikelihood()(Scored(label, params), source, seed=0)
            results = load_results()  # re-read: another process may have added runs meanwhile
            results["runs"][run_key] = {
                "key": key,
                "label": label + ("" if args.lr_decay == "none" else f", lr {args.lr_decay} decay")
                + ("" if args.hidden == HIDDEN else f", {args.hidden} hidden"),
                "lr_decay": args.lr_decay,
                "order": list(settings).index(key),
                "epochs": args.epochs,
                "seed": args.seed,
                "passes": args.epochs,
                "updates": args.epochs * EPOCH_STEPS,
                "settings": {"hidden": args.hidden, "batch_size": BATCH, "lr": LR, "lr_decay": args.lr_decay, **overrides},
                "train_seconds": seconds,
                "ais": ais,
                "ais_seconds": ais_seconds,
                "pseudo_likelihood": pl,
                "weights": run_key,
                "machine": machine_info(),
            }
            results["protocol"] = __doc__
            RESULT.parent.mkdir(parents=True, exist_ok=True)
            RESULT.write_text(json.dumps(results, indent=2) + "\n")
            print(f"{run_key}: LL {ais['log_likelihood']:.2f} ± {ais['log_likelihood_se']:.2f} (train {seconds:.0f} s, AIS {ais_seconds:.0f} s)", flush=True)
    results = load_results()
    print(write_table(results))
    print(write_samples(results))


if __name__ == "__main__":
    main()
