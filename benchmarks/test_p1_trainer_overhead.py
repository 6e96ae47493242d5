"""P1 — trainer overhead: igm's Trainer against a plain PyTorch loop, GAN on grid25, batch 256.

Both contenders train the SAME networks: every round builds the GAN with
``igm.testing.build_model("gan", info)`` (seeded, so weights are identical from round to round),
and the plain loop trains deep copies of that model's ``generator.net`` and ``critic``. Same Adam
settings (read from the model's players: lr 1e-4, betas (0.5, 0.999)), batch 256, 10-d noise.

Per training step (one round of players), both do the same work:

- critic step: a fresh random batch of real points; fake = G(z) under no_grad;
  loss = mean softplus(-D(real)) + mean softplus(D(fake)); zero_grad, backward, Adam step;
- generator step: a fresh random batch drawn (igm draws one for every player step; the
  non-saturating loss does not use it); loss = mean softplus(-D(G(z))); the critic's parameters
  are frozen (requires_grad off) during this step, exactly as igm's Trainer does, so both
  backwards compute the same gradients; zero_grad, backward, Adam step.

Whole runs of both flush subnormal floats to zero, as ``Trainer.fit`` does (``igm.subnormals``):
the ratio is the trainer's overhead, not a difference of floating-point modes.

igm's Trainer additionally reads each loss with ``.item()`` to stop on a non-finite loss and
keeps the per-interval loss means for its log: that is part of what it costs, and is counted.

Rows:

- ``igm/plain``: whole runs of 2,000 steps, ``Trainer(...).fit()`` with ``out_dir=None`` and no
  progress bar against the plain loop; per-round ratio, median over rounds. Issue target <= 1.05.
- ``igm+files/plain`` (for information): ``out_dir`` on — metrics.jsonl every 100 steps, a
  checkpoint every 1,000 steps and at the end, and the final samples.png.
- per-step alternation (a steadier cross-check on a busy machine): ``Trainer.train_step()``
  against the plain loop's body, called alternately 1,000 times each; ratio of the medians.

13 rounds by default; when the first round shows the machine is slow today, fewer (never below
5) so that the whole runs stay within about 150 s.

Run: ``.venv/bin/python -m pytest benchmarks/test_p1_trainer_overhead.py --benchmark-only -q``
(``IGM_BENCH_P1_STEPS``, ``IGM_BENCH_P1_PAIRS``, ``IGM_BENCH_REPEATS``, ``IGM_BENCH_THREADS``
change the defaults).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _bench import Interleaved, env_int, ratio_of_minimums, rounds_within, run_rounds, spread, write_result

from igm.data import open_data
from igm.subnormals import flush_subnormals
from igm.testing import build_model
from igm.trainer import RunConfig, Trainer

STEPS = env_int("IGM_BENCH_P1_STEPS", 2000)
BATCH = 256
WARMUP_STEPS = 100
DEFAULT_ROUNDS = 13  # whole-run rounds on a quiet machine (fewer, at least 5, when rounds are slow)
BUDGET_S = 150.0  # time budget of the whole-run rounds
PAIRS = env_int("IGM_BENCH_P1_PAIRS", 1000)  # per-step alternation pairs


def plain_loop(
    G: torch.nn.Module,
    D: torch.nn.Module,
    data: torch.Tensor,
    steps: int,
    batch: int,
    latent: int,
    g_opt: dict,
    d_opt: dict,
) -> None:
    """The hand-written loop: one logistic critic step, one non-saturating generator step per round."""
    torch.manual_seed(0)
    step = plain_step_fn(G, D, data, batch, latent, g_opt, d_opt)
    for _ in range(steps):
        step()


def plain_step_fn(G, D, data, batch: int, latent: int, g_opt: dict, d_opt: dict):
    """One round of the hand-written loop as a function of no arguments (optimizers built here)."""
    opt_d = torch.optim.Adam(D.parameters(), **d_opt)
    opt_g = torch.optim.Adam(G.parameters(), **g_opt)
    d_params = list(D.parameters())
    n = data.shape[0]

    def step() -> None:
        # critic
        real = data[torch.randint(n, (batch,))]  # (B, 2)
        with torch.no_grad():
            fake = G(torch.randn(batch, latent))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # generator (critic frozen, as igm does; the batch is drawn as igm draws it)
        real = data[torch.randint(n, (batch,))]
        for p in d_params:
            p.requires_grad_(False)
        loss_g = F.softplus(-D(G(torch.randn(batch, latent)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)

    return step


def alternate_steps(a, b, pairs: int) -> dict:
    """Call ``a`` and ``b`` alternately (order flipping every pair); per-call medians and paired difference."""
    clock = time.perf_counter
    ta, tb = [], []
    for i in range(pairs):
        first, second = (a, b) if i % 2 else (b, a)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        (ta, tb)[0 if first is a else 1].append(t1 - t0)
        (ta, tb)[1 if first is a else 0].append(t2 - t1)
    ma, mb = statistics.median(ta), statistics.median(tb)
    return {
        "pairs": pairs,
        "igm_us": ma * 1e6,
        "plain_us": mb * 1e6,
        "ratio_of_medians": ma / mb,
        "median_paired_diff_us": statistics.median([x - y for x, y in zip(ta, tb)]) * 1e6,
    }


def adam_settings(model, player: str) -> dict:
    p = next(p for p in model.players() if p.name == player)
    assert p.optimizer == "adam" and p.steps == 1 and not p.clip_grad_norm, f"unexpected {player} player: {p}"
    return {"lr": p.lr, "betas": tuple(p.betas), "weight_decay": p.weight_decay}


def test_p1_gan_grid25_trainer_overhead(benchmark, torch_threads, tmp_path: Path) -> None:
    source = open_data("grid25", 0)
    data = source.split("train")[0]  # (100000, 2)
    probe = build_model("gan", source.info)
    assert probe.config.divergence == "jsd" and probe.config.loss == "non-saturating"
    latent = probe.config.latent_dim
    g_opt, d_opt = adam_settings(probe, "generator"), adam_settings(probe, "critic")

    def run_cfg(steps: int, files: bool) -> RunConfig:
        return RunConfig(
            steps=steps,
            batch_size=BATCH,
            log_every=100,
            sample_every=0,
            checkpoint_every=1000 if files else 0,
            device="cpu",
        )

    def igm(steps: int = STEPS, files: bool = False):
        """Set-up (untimed): build the model; returns the timed work (Trainer construction + fit)."""
        model = build_model("gan", source.info)
        out = Path(tempfile.mkdtemp(dir=tmp_path)) / "run" if files else None
        run = run_cfg(steps, files)
        return lambda: Trainer(model, source, run, out_dir=out, progress=False).fit()

    def plain(steps: int = STEPS):
        """Set-up (untimed): deep copies of a freshly built igm GAN's networks; returns the timed loop."""
        model = build_model("gan", source.info)
        G, D = copy.deepcopy(model.generator.net), copy.deepcopy(model.critic)
        def loop() -> None:
            with flush_subnormals():  # the floating-point mode Trainer.fit trains in
                plain_loop(G, D, data, steps, BATCH, latent, g_opt, d_opt)

        return loop

    # warm-up (allocator, autograd, first-call paths), not timed
    plain(WARMUP_STEPS)()
    igm(WARMUP_STEPS)()
    igm(WARMUP_STEPS, files=True)()

    # whole runs, interleaved; the first round also tells how many fit the time budget today
    bench = Interleaved({"plain": plain, "igm": igm, "igm_files": lambda: igm(files=True)})
    t0 = time.perf_counter()
    bench.round()
    rounds = rounds_within(DEFAULT_ROUNDS, time.perf_counter() - t0, BUDGET_S)
    run_rounds(benchmark, bench, rounds - 1)

    # per-step alternation: Trainer.train_step against the plain loop's body, step by step
    trainer = Trainer(build_model("gan", source.info), source, run_cfg(10**9, False), out_dir=None, progress=False)
    fresh = build_model("gan", source.info)
    step = plain_step_fn(copy.deepcopy(fresh.generator.net), copy.deepcopy(fresh.critic), data, BATCH, latent, g_opt, d_opt)
    alternate_steps(trainer.train_step, step, 50)  # warm-up
    per_step = alternate_steps(trainer.train_step, step, PAIRS)

    r = spread(bench.ratio("igm", "plain"))
    r_cpu = spread(bench.ratio("igm", "plain", cpu=True))
    r_files = spread(bench.ratio("igm_files", "plain"))
    fastest = ratio_of_minimums(bench.times["igm"], bench.times["plain"])
    ms = {k: spread([t / STEPS * 1e3 for t in v]) for k, v in bench.times.items()}
    summary = (
        f"GAN grid25 b{BATCH}, {STEPS} steps x {rounds} rounds, {torch_threads} thread(s): "
        f"igm/plain = {r['median']:.3f} (IQR {r['q1']:.3f}-{r['q3']:.3f}; CPU time {r_cpu['median']:.3f}; "
        f"fastest runs {fastest:.3f}); igm+files/plain = {r_files['median']:.3f}; "
        f"ms/step plain {ms['plain']['median']:.3f}, igm {ms['igm']['median']:.3f}, "
        f"igm+files {ms['igm_files']['median']:.3f}; per-step alternation: train_step/plain step = "
        f"{per_step['ratio_of_medians']:.3f} ({per_step['median_paired_diff_us']:+.0f} us/step)"
    )
    benchmark.extra_info.update(
        {"ratio_igm_plain": r["median"], "ratio_igm_files_plain": r_files["median"], "steps": STEPS}
    )
    write_result(
        "p1_trainer_overhead",
        {
            "command": ".venv/bin/python -m pytest benchmarks/test_p1_trainer_overhead.py --benchmark-only -q",
            "setup": {
                "model": "gan (jsd, non-saturating), MLP G 10-100-100-2, D 2-100-1",
                "data": "grid25, 100,000 training points",
                "batch_size": BATCH,
                "steps": STEPS,
                "rounds": rounds,
                "torch_threads": torch_threads,
                "adam_generator": g_opt,
                "adam_critic": d_opt,
                "files_row": "out_dir on: metrics every 100 steps, checkpoint every 1000 + at end, final samples.png",
                "per_step_row": f"Trainer.train_step() vs the plain loop's body, {PAIRS} alternated pairs",
            },
            "target": "igm/plain <= 1.05",
            "ratio_igm_over_plain": r,
            "ratio_igm_over_plain_cpu_time": r_cpu,
            "ratio_of_minimum_times_igm_over_plain": fastest,
            "ratio_igm_files_over_plain": r_files,
            "ratio_of_minimum_times_igm_files_over_plain": ratio_of_minimums(bench.times["igm_files"], bench.times["plain"]),
            "per_step_alternation": per_step,
            "ms_per_step": ms,
            "raw_wall_seconds": bench.times,
            "raw_cpu_seconds": bench.cpu,
        },
        summary,
    )
