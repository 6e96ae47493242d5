"""Where igm's per-step and per-sample overhead goes (a diagnostic for P1 and P6, not a test).

Each line times one igm call against the hand-written call that does the same tensor work,
alternating the two call by call many times (the order flips every pair) and reporting the
median time of each and the median of the paired differences. Per-call medians of short,
alternated calls are far steadier on a busy machine than whole-run totals, so this is the
tool to attribute the P1/P6 ratios to code, and to check a fix.

Run: ``.venv/bin/python benchmarks/diagnose_overhead.py`` (about a minute; 1 torch thread
unless ``IGM_BENCH_THREADS`` says otherwise). Writes ``benchmarks/results/overhead_breakdown.json``.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import env_int, write_result  # noqa: E402

from igm.data import open_data  # noqa: E402
from igm.testing import build_model  # noqa: E402
from igm.trainer import RunConfig, Trainer  # noqa: E402

BATCH = 256


def paired(a: Callable[[], object], b: Callable[[], object], n: int) -> dict[str, float]:
    """Median µs of ``a`` and ``b`` called alternately ``n`` times each, and of their paired difference."""
    clock = time.perf_counter
    ta, tb = [], []
    for _ in range(min(50, n)):  # warm both
        a(), b()
    for i in range(n):
        if i % 2:
            t0 = clock(); a(); t1 = clock(); b(); t2 = clock()  # noqa: E702
            ta.append(t1 - t0), tb.append(t2 - t1)
        else:
            t0 = clock(); b(); t1 = clock(); a(); t2 = clock()  # noqa: E702
            tb.append(t1 - t0), ta.append(t2 - t1)
    return {
        "igm_us": statistics.median(ta) * 1e6,
        "plain_us": statistics.median(tb) * 1e6,
        "diff_us": statistics.median([x - y for x, y in zip(ta, tb)]) * 1e6,
    }


def main() -> None:
    threads = env_int("IGM_BENCH_THREADS", 1)
    torch.set_num_threads(threads)
    source = open_data("grid25", 0)
    data = source.split("train")[0]
    model = build_model("gan", source.info)
    gen, G, D = model.generator, model.generator.net, model.critic
    latent = gen.latent_dim
    batch = next(source.stream(BATCH, 0))
    x = batch[0]
    z = torch.randn(BATCH, latent)

    def plain_critic_loss():
        with torch.no_grad():
            fake = G(torch.randn(BATCH, latent))
        return F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()

    # whole rounds: Trainer.train_step, a lean loop over the same players, the P1 plain step
    trainer = Trainer(
        build_model("gan", source.info),
        source,
        RunConfig(steps=10**9, batch_size=BATCH, log_every=100, sample_every=0, checkpoint_every=0, device="cpu"),
        out_dir=None,
        progress=False,
    )
    lean_model = build_model("gan", source.info)
    lean_stream = source.stream(BATCH, 0)
    players = lean_model.players()
    optimizers = [p.make_optimizer() for p in players]
    trainable = [q for q in lean_model.parameters() if q.requires_grad]
    others = [[q for q in trainable if all(q is not r for r in p.parameters)] for p in players]

    def lean_step():
        for player, opt, frozen in zip(players, optimizers, others):
            for q in frozen:
                q.requires_grad_(False)
            loss = lean_model.loss(player.name, next(lean_stream))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for q in frozen:
                q.requires_grad_(True)

    plain_model = build_model("gan", source.info)
    G2, D2 = copy.deepcopy(plain_model.generator.net), copy.deepcopy(plain_model.critic)
    opt_d = torch.optim.Adam(D2.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G2.parameters(), lr=1e-4, betas=(0.5, 0.999))
    d_params = list(D2.parameters())

    def plain_step():
        real = data[torch.randint(data.shape[0], (BATCH,))]
        with torch.no_grad():
            fake = G2(torch.randn(BATCH, latent))
        loss = F.softplus(-D2(real)).mean() + F.softplus(D2(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        real = data[torch.randint(data.shape[0], (BATCH,))]
        for p in d_params:
            p.requires_grad_(False)
        loss = F.softplus(-D2(G2(torch.randn(BATCH, latent)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)

    rows: dict[str, dict[str, float]] = {}

    def row(name: str, a, b, n: int) -> None:
        rows[name] = paired(a, b, n)
        r = rows[name]
        print(f"{name:<62} igm {r['igm_us']:8.1f} us  plain {r['plain_us']:8.1f} us  diff {r['diff_us']:+7.1f} us")

    first = next(G.parameters())
    device_row = "Generator.device  vs  a parameter's .device (cached)"
    row(device_row, lambda: gen.device, lambda: first.device, 20000)
    row(f"generator.sample({BATCH})  vs  net(torch.randn)  [grad on]", lambda: gen.sample(BATCH),
        lambda: G(torch.randn(BATCH, latent)), 5000)
    with torch.inference_mode():
        row("generator.sample(64)  vs  net(torch.randn)  [inference_mode]", lambda: gen.sample(64),
            lambda: G(torch.randn(64, latent)), 20000)
    row("model.loss('critic')  vs  hand-written critic loss  [forward]", lambda: model.loss("critic", batch),
        plain_critic_loss, 5000)
    row("model.loss('generator')  vs  hand-written  [forward]", lambda: model.loss("generator", batch),
        lambda: F.softplus(-D(G(torch.randn(BATCH, latent)))).mean(), 5000)
    row("igm.nn.MLP G(z)  vs  its own nn.Sequential G.net(z)", lambda: G(z), lambda: G.net(z), 5000)
    row("igm.nn.MLP D(x)  vs  D.net(x)[:, 0]", lambda: D(x), lambda: D.net(x)[:, 0], 5000)
    row("Trainer.train_step()  vs  lean loop over the same players", trainer.train_step, lean_step, 2000)
    row("Trainer.train_step()  vs  the P1 plain step", trainer.train_step, plain_step, 2000)

    step = rows["Trainer.train_step()  vs  the P1 plain step"]
    summary = (
        f"per round: Trainer {step['igm_us']:.0f} us vs plain {step['plain_us']:.0f} us "
        f"(+{step['diff_us']:.0f} us, {step['igm_us'] / step['plain_us']:.3f}); "
        f"Generator.device {rows[device_row]['diff_us']:+.1f} us/call"
    )
    write_result(
        "overhead_breakdown",
        {
            "command": ".venv/bin/python benchmarks/diagnose_overhead.py",
            "setup": {"torch_threads": threads, "batch_size": BATCH, "model": "gan on grid25 (MLP)"},
            "rows": rows,
        },
        summary,
    )


if __name__ == "__main__":
    main()
