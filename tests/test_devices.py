"""Device habits, checked on the CPU where they can be: deferred loss reads, data placed on the device,
bf16 autocast, compiled steps, threads and GPU counts. Tests that need CUDA skip without it."""

from __future__ import annotations

import pytest
import torch

import igm.trainer
from igm import checkpoint
from igm.data import open_data
from igm.errors import ConfigError, TrainingError
from igm.testing import build_model, toy_points
from igm.trainer import RunConfig, Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def run_config(steps: int, **kw) -> RunConfig:
    base = dict(steps=steps, batch_size=32, seed=2, log_every=4, sample_every=0, checkpoint_every=0, device="cpu")
    return RunConfig(**{**base, **kw})


def trainer(out, steps: int, seed: int = 0, data=None, **kw) -> Trainer:
    data = data or toy_points()
    return Trainer(build_model("gan", data.info, seed=seed), data, run_config(steps, **kw), out, progress=False)


def state(path) -> dict[str, torch.Tensor]:
    return checkpoint.read_file(path / checkpoint.TRAINER_FILE)[0]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_deferred_loss_reads_train_the_same_tensors(tmp_path):
    trainer(tmp_path / "now", 9).fit()
    deferred = trainer(tmp_path / "later", 9)
    deferred.defer_sync = True  # what an accelerator does: losses stay tensors until log time
    deferred.fit()
    assert same(state(tmp_path / "now"), state(tmp_path / "later"))
    assert (tmp_path / "now" / "metrics.jsonl").read_text().count("\n") == 3


def test_a_deferred_non_finite_loss_names_its_player_and_first_step_and_saves_nothing_bad(tmp_path):
    t = trainer(tmp_path / "run", 12, checkpoint_every=4)
    t.defer_sync = True
    real = t.model.loss

    def loss(player, batch):
        out = real(player, batch)
        return out * float("nan") if player == "generator" and t.step + 1 >= 6 else out

    t.model.loss = loss
    with pytest.raises(TrainingError, match=r"the generator loss became nan at step 6; the last good checkpoint \(step 4\)"):
        t.fit()
    saved = state(tmp_path / "run")
    assert checkpoint.read_file(tmp_path / "run" / checkpoint.TRAINER_FILE)[1]["igm.step"] == "4"
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())


def test_a_stream_placed_on_its_device_draws_the_same_batches_and_state():
    source = open_data("grid25")
    a, b = source.stream(64, 3), source.stream(64, 3)
    assert b.to_device(torch.device("cpu"))
    for _ in range(1600):  # past an epoch boundary (100,000 / 64 batches)
        xa, _ = next(a)
        xb, _ = next(b)
    assert torch.equal(xa, xb)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_data_too_large_for_the_device_budget_stays_on_the_host(monkeypatch):
    from igm.data.base import fits_on

    x = torch.zeros(1000, 10)
    monkeypatch.setenv("IGM_DEVICE_DATA_LIMIT", "10K")
    assert not fits_on(torch.device("cuda"), x)  # 40,000 bytes
    monkeypatch.setenv("IGM_DEVICE_DATA_LIMIT", "1M")
    assert fits_on(torch.device("cuda"), x)


def test_bf16_trains_finite_is_recorded_and_resumes_exactly(tmp_path):
    full = trainer(tmp_path / "full", 8, precision="bf16")
    full.fit()
    assert full.autocast.fast_dtype == torch.bfloat16
    trainer(tmp_path / "split", 4, precision="bf16").fit()
    trainer(tmp_path / "split", 8, seed=7, precision="bf16").fit(resume=True)
    assert same(state(tmp_path / "full"), state(tmp_path / "split"))
    fp32 = trainer(tmp_path / "fp32", 8)
    fp32.fit()
    assert not same(state(tmp_path / "full"), state(tmp_path / "fp32"))  # autocast really changed the arithmetic
    with pytest.raises(ConfigError, match="precision 'bf16' -> 'fp32'"):
        trainer(tmp_path / "split", 10).fit(resume=True)  # a resumed run keeps its precision


def test_compiled_losses_train_the_same_tensors(tmp_path, monkeypatch):
    monkeypatch.setattr(igm.trainer, "COMPILE_BACKEND", "eager")  # dynamo's tracing without code generation: fast
    trainer(tmp_path / "eager", 6).fit()
    compiled = trainer(tmp_path / "compiled", 6, compile=True)
    compiled.fit()
    assert all(hasattr(fn, "_torchdynamo_orig_callable") or "Optimized" in type(fn).__name__ for fn in compiled.losses)
    assert same(state(tmp_path / "eager"), state(tmp_path / "compiled"))


def test_threads_and_gpu_counts(monkeypatch):
    from igm import distributed
    from igm.cli import _check_devices

    before = torch.get_num_threads()
    try:
        assert distributed.set_threads(1) == 1
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert distributed.set_threads() == max(1, (__import__("os").cpu_count() or 1) // 2)
    finally:
        torch.set_num_threads(before)
    assert _check_devices(2, "cpu", "auto") == "gloo"
    with pytest.raises(ConfigError, match="--backend nccl runs on GPUs"):
        _check_devices(2, "cpu", "nccl")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"--nproc 2 needs 2 GPUs and 1 is visible: use --nproc 1, or --device cpu"):
        _check_devices(2, "auto", "auto")


@pytest.mark.parametrize("source", ["grid25", "binarized-digits"])
def test_a_prefetching_stream_hands_out_the_same_batches_and_saves_the_position_of_the_last_one(source):
    """One batch is drawn ahead, yet the saved state is that after the batches handed out."""
    from igm.data.prefetch import PrefetchStream

    data = open_data(source)
    plain, ahead = data.stream(64, 3), PrefetchStream(data.stream(64, 3), torch.device("cpu"))
    for k in range(1, 1601):  # past an epoch boundary (100,000 / 64 batches of grid25)
        xa, ya = next(plain)
        xb, yb = next(ahead)
        assert torch.equal(xa, xb) and (ya is None) == (yb is None)
        if k in (1, 7, 1563, 1600):
            sa, sb = plain.state_dict(), ahead.state_dict()
            assert sa.keys() == sb.keys() and all(torch.equal(sa[key], sb[key]) for key in sa), k
    resumed = PrefetchStream(data.stream(64, 99), torch.device("cpu"))
    resumed.load_state_dict(ahead.state_dict())
    for _ in range(5):
        assert torch.equal(next(plain)[0], next(resumed)[0])


def test_a_run_fed_one_batch_ahead_resumes_bit_identical(tmp_path, monkeypatch):
    """The trainer wraps a source too large for the device in a PrefetchStream; resume stays exact."""
    from igm.data.prefetch import PrefetchStream

    real_init = igm.trainer.Trainer.__init__

    def prefetching_init(self, *args, **kw):  # what the trainer does on CUDA for a source over the budget
        real_init(self, *args, **kw)
        self.stream = PrefetchStream(self.stream, self.device)

    monkeypatch.setattr(igm.trainer.Trainer, "__init__", prefetching_init)
    trainer(tmp_path / "full", 8).fit()
    trainer(tmp_path / "split", 4).fit()
    t = trainer(tmp_path / "split", 8, seed=5)
    assert isinstance(t.stream, PrefetchStream)
    t.fit(resume=True)
    monkeypatch.undo()
    trainer(tmp_path / "plain", 8).fit()
    assert same(state(tmp_path / "full"), state(tmp_path / "split"))
    assert same(state(tmp_path / "full"), state(tmp_path / "plain"))  # prefetching changes nothing


@cuda
def test_on_cuda_a_source_over_the_budget_is_prefetched_from_pinned_memory_and_resumes_exactly(tmp_path, monkeypatch):
    from igm.data.prefetch import PrefetchStream

    monkeypatch.setenv("IGM_DEVICE_DATA_LIMIT", "1K")
    source = open_data("grid25")
    t = trainer(tmp_path / "full", 8, data=source, device="cuda")
    assert isinstance(t.stream, PrefetchStream) and not t.data_on_device and t.stream.pin
    t.fit()
    trainer(tmp_path / "split", 4, data=source, device="cuda").fit()
    trainer(tmp_path / "split", 8, seed=5, data=source, device="cuda").fit(resume=True)
    assert same(state(tmp_path / "full"), state(tmp_path / "split"))


@cuda
def test_on_cuda_the_data_lives_on_the_device_and_resume_is_exact(tmp_path):
    source = open_data("grid25")
    t = trainer(tmp_path / "full", 8, data=source, device="cuda")
    assert t.data_on_device and t.stream.x.device.type == "cuda" and t.defer_sync
    t.fit()
    trainer(tmp_path / "split", 4, data=source, device="cuda").fit()
    trainer(tmp_path / "split", 8, seed=5, data=source, device="cuda").fit(resume=True)
    assert same(state(tmp_path / "full"), state(tmp_path / "split"))


@pytest.mark.parametrize("which", ["sig", "gradient_penalty", "r1"])
def test_losses_that_bf16_would_ruin_stay_float32_under_autocast(which):
    from igm import sig_loss
    from igm.divergences.base import logistic_critic_step
    from igm.divergences.wasserstein import gradient_penalty

    torch.manual_seed(0)
    x, theta = torch.randn(64, 3), torch.randn(48, 3)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def compute():
        torch.manual_seed(1)  # the penalty's interpolation draws
        if which == "sig":
            return sig_loss(x, theta, sigma=0.05)
        if which == "gradient_penalty":
            return gradient_penalty(lambda v: critic(v).squeeze(1), x, theta[:64].repeat(2, 1)[:64])
        return logistic_critic_step(lambda v: critic(v).squeeze(1), x, theta[:64].repeat(2, 1)[:64], "jsd", r1_weight=1.0)

    plain = compute()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = compute()
    assert mixed.dtype == torch.float32
    if which == "r1":  # the fake half's logits still go through bf16; the penalty and real logits do not
        torch.testing.assert_close(mixed, plain, rtol=2e-2, atol=2e-2)
    else:
        torch.testing.assert_close(mixed, plain)
