"""P4 — peers: VAE and IWAE time per epoch, igm against pythae 0.1.2, on the same networks and data.

pythae lives in its own environment (its pins are not igm's); set it up once with torch kept at
the project's pin::

    python -m venv .venv-peers
    .venv-peers/bin/pip install -c constraints.txt pythae==0.1.2 -e . -e plugins/vae pytest pytest-benchmark

and run ``.venv-peers/bin/python -m pytest benchmarks/test_p4_peers.py --benchmark-only -q``.
Without pythae (e.g. in the project's own .venv) the suite is skipped.

Same networks: every round builds igm's VAE (``network=mlp``: the IWAE paper's 784-200-200-2x50
tanh encoder and 50-200-200-784 decoder) and hands deep copies of those very networks to pythae,
wrapped in pythae's BaseEncoder/BaseDecoder (the decoder wrapper applies the sigmoid pythae's
``bce`` loss expects). Same data: MNIST's 60,000 training images binarized once with a fixed
seed (pythae has no dynamic binarization, so both get the same static bits), batch 100, Adam
lr 1e-3, one torch thread. Same objective: the ELBO with the closed-form KL (igm ``k=1``,
pythae ``VAE``) and the importance-weighted bound with k samples (igm ``k=K``, pythae ``IWAE``
with ``number_samples=K``).

Timed: one epoch each, after one untimed warm-up epoch of each. igm: ``Trainer(...).fit()`` for 600 steps (60,000 / 100) with no
output directory; pythae: ``BaseTrainer.train_step(epoch)``, its own loop over its DataLoader
(shuffled, 600 batches), after an untimed construction of the trainer and its ``prepare_training()``. Interleaved rounds,
per-round ratio igm / pythae, median over rounds. Target: igm faster (ratio < 1).
``IGM_BENCH_P4_TRAIN`` cuts the training set (default 60,000), ``IGM_BENCH_P4_K`` sets the IWAE's k
(default 5), ``IGM_BENCH_REPEATS`` the rounds (default 3).
"""

from __future__ import annotations

import copy
import tempfile
import time

import pytest
import torch
from _bench import MNIST, Interleaved, env_int, repeats, run_rounds, spread, write_result

pythae = pytest.importorskip("pythae", reason="pythae is not installed here: see the module docstring for .venv-peers")

from pythae.data.datasets import BaseDataset  # noqa: E402
from pythae.models import IWAE, VAE, IWAEConfig, VAEConfig  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseEncoder  # noqa: E402
from pythae.trainers import BaseTrainer, BaseTrainerConfig  # noqa: E402

from igm.data.base import DataInfo, TensorSource  # noqa: E402
from igm.data.binarized import binarize  # noqa: E402
from igm.data.mnist import mnist  # noqa: E402
from igm.testing import build_model  # noqa: E402
from igm.trainer import RunConfig, Trainer  # noqa: E402

TRAIN = env_int("IGM_BENCH_P4_TRAIN", 60_000)
K = env_int("IGM_BENCH_P4_K", 5)
BATCH = 100
LR = 1e-3


class Encoder(BaseEncoder):
    """igm's encoder network as a pythae encoder: mean and log-variance of q(z|x)."""

    def __init__(self, net: torch.nn.Module) -> None:
        BaseEncoder.__init__(self)
        self.net = net

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return ModelOutput(embedding=mu, log_covariance=logvar)


class Decoder(BaseDecoder):
    """igm's decoder network as a pythae decoder: Bernoulli means (pythae's bce loss takes probabilities)."""

    def __init__(self, net: torch.nn.Module) -> None:
        BaseDecoder.__init__(self)
        self.net = net

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))


@pytest.fixture(scope="module")
def static_mnist() -> TensorSource:
    try:
        base = mnist(str(MNIST), 0)
    except Exception as exc:  # noqa: BLE001 - the data file is optional on a developer's machine
        pytest.skip(f"MNIST not available: {exc}")
    x = binarize(base.split("train")[0][:TRAIN], torch.Generator().manual_seed(0))  # (N, 1, 28, 28) bits
    info = DataInfo("static-binarized-mnist", (1, 28, 28), None, (0.0, 1.0), "image", {"binarized": "static"})
    return TensorSource(info, x)


@pytest.mark.parametrize("k", [1, K], ids=["vae", f"iwae{K}"])
def test_p4_time_per_epoch_against_pythae(benchmark, torch_threads, static_mnist: TensorSource, k: int, tmp_path) -> None:
    info, x = static_mnist.info, static_mnist.split("train")[0]
    overrides = {"k": str(k), "network": "mlp", "lr": str(LR)}
    steps = x.shape[0] // BATCH
    probe = build_model("vae", info, overrides)
    assert probe.config.likelihood == "bernoulli" and probe.config.hidden == (200, 200)

    def igm():
        model = build_model("vae", info, overrides)
        run = RunConfig(steps=steps, batch_size=BATCH, log_every=100, sample_every=0, checkpoint_every=0, device="cpu")
        return lambda: Trainer(model, static_mnist, run, out_dir=None, progress=False).fit()

    def peer():
        model = build_model("vae", info, overrides)
        enc, dec = Encoder(copy.deepcopy(model.encoder.net)), Decoder(copy.deepcopy(model.generator.net))
        if k == 1:
            net = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=model.config.latent_dim, reconstruction_loss="bce"), enc, dec)
        else:
            config = IWAEConfig(input_dim=(1, 28, 28), latent_dim=model.config.latent_dim, reconstruction_loss="bce",
                                number_samples=k)
            net = IWAE(config, enc, dec)
        training = BaseTrainerConfig(output_dir=tempfile.mkdtemp(dir=tmp_path), num_epochs=1, learning_rate=LR,
                                     per_device_train_batch_size=BATCH, optimizer_cls="Adam", no_cuda=True)
        trainer = BaseTrainer(net, BaseDataset(x, torch.zeros(x.shape[0])), None, training)
        trainer.prepare_training()  # optimizer, output folder, callbacks: what train() does before its epochs
        return lambda: trainer.train_step(1)

    igm()()  # warm-up (first-call paths of autograd and Adam, allocator), not timed
    peer()()
    bench = Interleaved({"igm": igm, "pythae": peer})
    rounds = repeats(3)
    run_rounds(benchmark, bench, rounds)

    r = spread(bench.ratio("igm", "pythae"))
    r_cpu = spread(bench.ratio("igm", "pythae", cpu=True))
    s = {name: spread(v) for name, v in bench.times.items()}
    label = "VAE" if k == 1 else f"IWAE k={k}"
    summary = (
        f"{label} binarized MNIST ({x.shape[0]} images, batch {BATCH}), {rounds} rounds, {torch_threads} thread(s): "
        f"igm/pythae time per epoch = {r['median']:.3f} (range {r['min']:.3f}-{r['max']:.3f}; CPU time {r_cpu['median']:.3f}); "
        f"s/epoch igm {s['igm']['median']:.1f}, pythae {s['pythae']['median']:.1f}"
    )
    write_result(
        f"p4_peers_k{k}",
        {
            "command": ".venv-peers/bin/python -m pytest benchmarks/test_p4_peers.py --benchmark-only -q",
            "setup": {
                "model": f"k={k}: igm vae (network=mlp) vs pythae {'VAE' if k == 1 else 'IWAE'}, the same networks",
                "data": f"MNIST train, first {x.shape[0]} images, binarized once (seed 0)",
                "batch_size": BATCH,
                "lr": LR,
                "rounds": rounds,
                "torch_threads": torch_threads,
                "pythae": "0.1.2, BaseTrainer.train_step (one epoch)",
            },
            "target": "igm/pythae < 1",
            "ratio_igm_over_pythae": r,
            "ratio_igm_over_pythae_cpu_time": r_cpu,
            "seconds_per_epoch": s,
            "raw_wall_seconds": bench.times,
            "raw_cpu_seconds": bench.cpu,
        },
        summary,
    )
