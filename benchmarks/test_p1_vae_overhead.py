"""P1 — trainer overhead, VAE and IWAE (k = 10) on digits, batch 64: igm's Trainer against a plain PyTorch loop.

Both contenders train the SAME networks: each round builds the model with
``igm.testing.build_model("vae", info, {"k": K, "network": "mlp"})`` (seeded, so the weights
are identical from round to round: the IWAE paper's MLPs, 64 -> 200 -> 200 -> 2x50 tanh encoder
and 50 -> 200 -> 200 -> 64 decoder, Bernoulli likelihood on the [0, 1] intensities) and the plain
loop trains deep copies of its ``encoder.net`` and ``generator.net``. Same Adam settings (read
from the model's player: lr 1e-3, betas (0.9, 0.999)), batch 64 from scikit-learn's digits
(1,500 training images; the MLP is chosen explicitly because ``network=auto`` gives image data
the conv pair).

The plain loop's step, written out here from the papers rather than from igm's code:

- k = 1 (VAE): ``mu, logvar = enc(x).chunk(2)``; ``z = mu + exp(logvar/2) * eps``;
  ``loss = mean(BCE-with-logits(dec(z), x).sum(-1) + KL(N(mu, sigma^2) || N(0, I)))``;
- k = 10 (IWAE): ``z`` of shape (k, B, L); ``log w = log p(x|z) + log p(z) - log q(z|x)``;
  ``loss = -mean(logsumexp(log w, 0) - log k)``;
- zero_grad, backward, Adam step; a random batch per step (``torch.randint`` indices).

igm's Trainer additionally reads the loss with ``.item()`` (to stop on a non-finite loss) and
keeps per-interval loss means: that is part of what it costs, and is counted.

Rows per model: whole runs of ``IGM_BENCH_P1_VAE_STEPS`` (default 1,500) steps,
``Trainer(...).fit()`` with ``out_dir=None`` and no progress bar against the plain loop,
interleaved rounds, per-round ratio, median over rounds (issue target <= 1.05; both flush
subnormals to zero, as ``Trainer.fit`` does); and a per-step
alternation (``Trainer.train_step`` against the plain step, called alternately) as a steadier
cross-check on a busy machine.

Run: ``.venv/bin/python -m pytest benchmarks/test_p1_vae_overhead.py --benchmark-only -q``
"""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch
import torch.nn.functional as F
from _bench import Interleaved, env_int, ratio_of_minimums, rounds_within, run_rounds, spread, write_result
from test_p1_trainer_overhead import adam_settings, alternate_steps

from igm.data import open_data
from igm.subnormals import flush_subnormals
from igm.testing import build_model
from igm.trainer import RunConfig, Trainer

STEPS = env_int("IGM_BENCH_P1_VAE_STEPS", 1500)
BATCH = 64
WARMUP_STEPS = 100
DEFAULT_ROUNDS = 11
BUDGET_S = 90.0  # time budget of the whole-run rounds, per model
PAIRS = env_int("IGM_BENCH_P1_PAIRS", 1000)
LOG_2PI = math.log(2 * math.pi)


def plain_step_fn(enc, dec, data: torch.Tensor, k: int, latent: int, opt: dict):
    """One step of the hand-written VAE (k = 1) or IWAE (k > 1) loop, as a function of no arguments."""
    params = [*enc.parameters(), *dec.parameters()]
    optimizer = torch.optim.Adam(params, **opt)
    n = data.shape[0]

    def step() -> None:
        x = data[torch.randint(n, (BATCH,))]  # (B, 1, 8, 8)
        mu, logvar = enc(x).chunk(2, dim=-1)  # (B, L) each
        x = x.flatten(1)  # (B, 64)
        std = torch.exp(0.5 * logvar)
        if k == 1:
            z = mu + std * torch.randn_like(mu)
            rec = F.binary_cross_entropy_with_logits(dec(z).flatten(1), x, reduction="none").sum(-1)  # (B,)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)  # (B,)
            loss = (rec + kl).mean()
        else:
            eps = torch.randn(k, BATCH, latent)
            z = mu + std * eps  # (k, B, L)
            logits = dec(z.reshape(k * BATCH, latent)).reshape(k, BATCH, -1)  # (k, B, D)
            log_px = -F.binary_cross_entropy_with_logits(logits, x.expand(k, -1, -1), reduction="none").sum(-1)
            log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
            log_qz = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
            loss = -(torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(k)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


@pytest.mark.parametrize("k", [1, 10], ids=["vae", "iwae10"])
def test_p1_vae_digits_trainer_overhead(benchmark, torch_threads, k: int) -> None:
    source = open_data("digits", 0)
    data = source.split("train")[0]  # (1500, 1, 8, 8)
    overrides = {"k": str(k), "network": "mlp"}
    probe = build_model("vae", source.info, overrides)
    assert probe.config.likelihood == "bernoulli" and probe.config.analytic_kl
    opt = adam_settings(probe, "vae")
    latent = probe.config.latent_dim
    run = RunConfig(steps=STEPS, batch_size=BATCH, log_every=100, sample_every=0, checkpoint_every=0, device="cpu")

    def igm(steps: int = STEPS):
        model = build_model("vae", source.info, overrides)
        r = RunConfig(**{**vars(run), "steps": steps})
        return lambda: Trainer(model, source, r, out_dir=None, progress=False).fit()

    def plain(steps: int = STEPS):
        model = build_model("vae", source.info, overrides)
        step = plain_step_fn(copy.deepcopy(model.encoder.net), copy.deepcopy(model.generator.net), data, k, latent, opt)

        def loop() -> None:
            torch.manual_seed(0)
            with flush_subnormals():  # the floating-point mode Trainer.fit trains in
                for _ in range(steps):
                    step()

        return loop

    plain(WARMUP_STEPS)()
    igm(WARMUP_STEPS)()
    bench = Interleaved({"plain": plain, "igm": igm})
    t0 = time.perf_counter()
    bench.round()
    rounds = rounds_within(DEFAULT_ROUNDS, time.perf_counter() - t0, BUDGET_S)
    run_rounds(benchmark, bench, rounds - 1)

    trainer = Trainer(build_model("vae", source.info, overrides), source, RunConfig(**{**vars(run), "steps": 10**9}),
                      out_dir=None, progress=False)
    fresh = build_model("vae", source.info, overrides)
    step = plain_step_fn(copy.deepcopy(fresh.encoder.net), copy.deepcopy(fresh.generator.net), data, k, latent, opt)
    alternate_steps(trainer.train_step, step, 50)  # warm-up
    per_step = alternate_steps(trainer.train_step, step, PAIRS)

    r = spread(bench.ratio("igm", "plain"))
    r_cpu = spread(bench.ratio("igm", "plain", cpu=True))
    fastest = ratio_of_minimums(bench.times["igm"], bench.times["plain"])
    ms = {name: spread([t / STEPS * 1e3 for t in v]) for name, v in bench.times.items()}
    label = "VAE" if k == 1 else f"IWAE k={k}"
    summary = (
        f"{label} digits b{BATCH}, {STEPS} steps x {rounds} rounds, {torch_threads} thread(s): "
        f"igm/plain = {r['median']:.3f} (IQR {r['q1']:.3f}-{r['q3']:.3f}; CPU time {r_cpu['median']:.3f}; "
        f"fastest runs {fastest:.3f}); ms/step plain {ms['plain']['median']:.3f}, igm {ms['igm']['median']:.3f}; "
        f"per-step alternation: train_step/plain step = {per_step['ratio_of_medians']:.3f} "
        f"({per_step['median_paired_diff_us']:+.0f} us/step)"
    )
    benchmark.extra_info.update({"ratio_igm_plain": r["median"], "steps": STEPS, "k": k})
    write_result(
        f"p1_vae_overhead_k{k}",
        {
            "command": ".venv/bin/python -m pytest benchmarks/test_p1_vae_overhead.py --benchmark-only -q",
            "setup": {
                "model": f"vae k={k} (network=mlp: 64-200-200-2x50 tanh encoder, 50-200-200-64 decoder, bernoulli)",
                "data": "digits, 1,500 training images (intensities in [0, 1])",
                "batch_size": BATCH,
                "steps": STEPS,
                "rounds": rounds,
                "torch_threads": torch_threads,
                "adam": opt,
                "per_step_row": f"Trainer.train_step() vs the plain loop's step, {PAIRS} alternated pairs",
            },
            "target": "igm/plain <= 1.05",
            "ratio_igm_over_plain": r,
            "ratio_igm_over_plain_cpu_time": r_cpu,
            "ratio_of_minimum_times_igm_over_plain": fastest,
            "per_step_alternation": per_step,
            "ms_per_step": ms,
            "raw_wall_seconds": bench.times,
            "raw_cpu_seconds": bench.cpu,
        },
        summary,
    )
