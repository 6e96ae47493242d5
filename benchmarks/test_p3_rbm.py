"""P3 — RBM time per epoch on binarized MNIST: igm's ``rbm`` family against scikit-learn's BernoulliRBM.

Same algorithm, data and settings for both: 500 hidden units, batch 100, learning rate 0.1
(plain SGD on the batch mean, scikit-learn's update), one epoch = 600 updates over the 60,000
training images, **persistent CD with one Gibbs sweep** (scikit-learn implements only PCD, called
SML there, with as many persistent chains as the batch size; igm: ``persistent=true, cd_k=1,
chains=0`` = the batch size), the same binarized training images (one fixed Bernoulli draw of
MNIST, seed 0, so neither side pays for dynamic binarization).

- ``igm``: ``Trainer(model, TensorSource(bits), RunConfig(steps=600, batch_size=100), out_dir=None,
  progress=False).fit()`` — the generic trainer, float32.
- ``sklearn``: ``BernoulliRBM(n_components=500, learning_rate=0.1, batch_size=100, n_iter=1,
  random_state=0).fit(bits)`` with float32 bits (scikit-learn keeps float32 input in float32):
  the like-for-like row.
- ``sklearn-f64`` (for information): the same on float64 bits, what ``fit`` runs on the usual
  float64 arrays.
- ``torch-loop`` (for information): scikit-learn's update written as a plain torch loop in this
  file (float32, no autograd, no optimizer, no trainer, batches in order as ``fit`` takes them,
  dense BLAS products): torch-loop / sklearn is the cost of torch's kernels, and igm /
  torch-loop that of the generic path (loss value, autograd, SGD, shuffled batches) less what
  igm saves by summing weight rows at the ones of its 0/1 rows (``igm.bits``) instead.

Timed: the whole fit; model / data building is not. Interleaved rounds (order rotates), one torch
thread and one BLAS thread for all (threadpoolctl), per-round ratios igm / scikit-learn, median
over rounds. Target: < 1 (igm faster). Skipped when ``$IGM_MNIST`` (default
``../shared/data/mnist.npz`` beside the repository) is absent.

Run: ``.venv/bin/python -m pytest benchmarks/test_p3_rbm.py --benchmark-only -q``
(``IGM_BENCH_REPEATS`` rounds, default 5).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from _bench import MNIST, Interleaved, ratio_of_minimums, repeats, run_rounds, spread, write_result

from igm.data import DataInfo, TensorSource, open_data
from igm.energy import bernoulli
from igm.testing import build_model
from igm.trainer import RunConfig, Trainer

HIDDEN, BATCH, LR = 500, 100, 0.1
EPOCH_STEPS = 60_000 // BATCH


@pytest.fixture(scope="module")
def source():
    if not MNIST.exists():
        pytest.skip(f"MNIST not found at {MNIST}")
    return open_data(f"binarized-mnist:{MNIST}", 0)


def test_p3_rbm_epoch(benchmark, torch_threads, source):
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    x_train = source.split("train")[0]
    bits = torch.bernoulli(x_train, generator=torch.Generator().manual_seed(0))  # (60000, 1, 28, 28)
    info = DataInfo("binarized-mnist-fixed", (1, 28, 28), None, (0.0, 1.0), "image")
    fixed = TensorSource(info, bits)
    x32 = bits.flatten(1).numpy()
    x64 = x32.astype(np.float64)
    overrides = {"hidden": str(HIDDEN), "persistent": "true", "cd_k": "1", "lr": str(LR)}

    def igm_epoch():
        model = build_model("rbm", info, overrides, seed=0)
        run = RunConfig(steps=EPOCH_STEPS, batch_size=BATCH, seed=0, log_every=100, sample_every=0, checkpoint_every=0, device="cpu")
        trainer = Trainer(model, fixed, run, out_dir=None, progress=False)
        return trainer.fit

    def sklearn_epoch(x):
        def prepare():
            rbm = BernoulliRBM(n_components=HIDDEN, learning_rate=LR, batch_size=BATCH, n_iter=1, random_state=0)
            return lambda: rbm.fit(x)

        return prepare

    def torch_epoch():
        g = torch.Generator().manual_seed(0)
        w = 0.01 * torch.randn(HIDDEN, x32.shape[1], generator=g)  # (H, V)
        b, c = torch.zeros(x32.shape[1]), torch.zeros(HIDDEN)
        x = torch.from_numpy(x32)  # (60000, V)
        step = LR / BATCH

        @torch.no_grad()
        def run() -> None:
            h = torch.zeros(BATCH, HIDDEN)  # the persistent chains, scikit-learn's h_samples_
            for i in range(EPOCH_STEPS):
                v = x[i * BATCH : (i + 1) * BATCH]
                h_pos = torch.sigmoid(torch.addmm(c, v, w.T))
                v_neg = bernoulli(torch.sigmoid(torch.addmm(b, h, w)), g)
                h_neg = torch.sigmoid(torch.addmm(c, v_neg, w.T))
                w.add_(h_pos.T @ v - h_neg.T @ v_neg, alpha=step)
                b.add_(v.sum(0) - v_neg.sum(0), alpha=step)
                c.add_(h_pos.sum(0) - h_neg.sum(0), alpha=step)
                h = bernoulli(h_neg, g)

        return run

    contenders = {"igm": igm_epoch, "sklearn": sklearn_epoch(x32), "sklearn-f64": sklearn_epoch(x64), "torch-loop": torch_epoch}
    bench = Interleaved(contenders)
    with threadpool_limits(limits=torch_threads):
        run_rounds(benchmark, bench, repeats(5))

    ratio = bench.ratio("igm", "sklearn")
    ratio64 = bench.ratio("igm", "sklearn-f64")
    payload = {
        "settings": {
            "hidden": HIDDEN,
            "batch_size": BATCH,
            "learning_rate": LR,
            "updates_per_epoch": EPOCH_STEPS,
            "algorithm": "PCD-1 (sklearn's SML), chains = batch size, plain SGD",
            "data": "one fixed binarization of the MNIST training images (seed 0) for all",
            "dtype": "igm float32; sklearn float32 (like for like) and float64 (for information)",
            "threads": torch_threads,
        },
        "rounds": bench.rounds,
        "seconds_per_epoch": {name: spread(t) for name, t in bench.times.items()},
        "ratio_igm_over_sklearn": spread(ratio),
        "ratio_of_minimums": ratio_of_minimums(bench.times["igm"], bench.times["sklearn"]),
        "cpu_ratio": spread(bench.ratio("igm", "sklearn", cpu=True)),
        "ratio_igm_over_sklearn_f64": spread(ratio64),
        "ratio_igm_over_torch_loop": spread(bench.ratio("igm", "torch-loop")),
        "ratio_torch_loop_over_sklearn": spread(bench.ratio("torch-loop", "sklearn")),
        "raw_times": bench.times,
        "target": "< 1 (igm faster)",
    }
    med = {name: spread(t)["median"] for name, t in bench.times.items()}
    summary = (
        f"RBM epoch (500 hidden, batch 100, PCD-1) igm {med['igm']:.2f} s, sklearn float32 {med['sklearn']:.2f} s, "
        f"float64 {med['sklearn-f64']:.2f} s: igm/sklearn {spread(ratio)['median']:.3f} (float32), "
        f"{spread(ratio64)['median']:.3f} (float64) (target < 1); torch loop {med['torch-loop']:.2f} s"
    )
    write_result("p3_rbm", payload, summary)
