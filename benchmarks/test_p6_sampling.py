"""P6 — sampling: ``igm.load(checkpoint).generator.sample(n)`` against calling the network directly.

Checkpoints: a GAN trained 20 steps on grid25 by igm's Trainer (its ``model.safetensors``; MLP
generator, 10-d noise) and a DCGAN GAN for 28x28 images in [0, 1] (built with
``igm.testing.build_model`` and saved with ``igm.checkpoint.save``; 256-d noise). Both are loaded
with ``igm.load`` (eval mode, CPU).

Contenders, both under ``torch.inference_mode()``:

- igm:    ``loaded.generator.sample(n)``
- direct: ``net(torch.randn(n, latent_dim))`` with ``net = loaded.generator.net``

for n = 64, 1,024, 16,384 (MLP) and n = 64 (DCGAN). A sanity check first asserts that both
produce the same tensor for the same seed (so they do the same work). Each timed block repeats
the call enough times to last about 50 ms; blocks of the two contenders alternate (order
rotating) and the per-round ratio of times igm/direct is reported as a median (1.00 = no
overhead; the igm samples/s are direct samples/s divided by it). Target: igm within 5% (<= 1.05).

Run: ``.venv/bin/python -m pytest benchmarks/test_p6_sampling.py --benchmark-only -q``
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from _bench import Interleaved, ratio_of_minimums, repeats, spread, write_result

import igm
from igm.checkpoint import save
from igm.data import DataInfo, open_data
from igm.testing import build_model
from igm.trainer import RunConfig, Trainer

BLOCK_SECONDS = 0.1
CASES = [("mlp-grid25", 64), ("mlp-grid25", 1024), ("mlp-grid25", 16384), ("dcgan-28x28", 64)]


def make_checkpoints(tmp: Path) -> dict[str, Path]:
    source = open_data("grid25", 0)
    run = RunConfig(steps=20, batch_size=256, log_every=10, sample_every=0, checkpoint_every=0, device="cpu")
    Trainer(build_model("gan", source.info), source, run, out_dir=tmp / "gan-grid25", progress=False).fit()
    image = DataInfo("x", (1, 28, 28), None, (0.0, 1.0), "image")
    dcgan = save(build_model("gan", image), tmp / "gan-dcgan28.safetensors")
    return {"mlp-grid25": tmp / "gan-grid25" / "model.safetensors", "dcgan-28x28": dcgan}


def calls_per_block(fn) -> int:
    """How many calls of ``fn`` last about BLOCK_SECONDS (fastest of a few single calls)."""
    fn()
    once = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        once.append(time.perf_counter() - t0)
    return max(1, round(BLOCK_SECONDS / max(min(once), 1e-7)))


def test_p6_sampling(benchmark, torch_threads, tmp_path: Path) -> None:
    paths = make_checkpoints(tmp_path)
    loaded = {name: igm.load(path) for name, path in paths.items()}
    benches: dict[str, Interleaved] = {}
    calls: dict[str, int] = {}
    with torch.inference_mode():
        for name, n in CASES:
            gen = loaded[name].generator
            net, latent = gen.net, gen.latent_dim
            torch.manual_seed(1)
            a = gen.sample(n)
            torch.manual_seed(1)
            b = net(torch.randn(n, latent))
            assert torch.equal(a, b), f"{name}: igm's sample and the direct call differ for the same seed"

            def igm_call(gen=gen, n=n):
                return gen.sample(n)

            def direct_call(net=net, n=n, latent=latent):
                return net(torch.randn(n, latent))

            key = f"{name}/n={n}"
            k = calls_per_block(direct_call)
            calls[key] = k

            def block(fn, k=k):
                def work():
                    for _ in range(k):
                        fn()

                return lambda: work

            benches[key] = Interleaved({"igm": block(igm_call), "direct": block(direct_call)})
            benches[key].round()  # warm-up round, discarded below
            benches[key] = Interleaved({"igm": block(igm_call), "direct": block(direct_call)})

        def one_round() -> None:
            for bench in benches.values():
                bench.round()

        rounds = repeats(21)
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)

    results = {}
    parts = []
    for key, bench in benches.items():
        n = int(key.split("=")[1])
        k = calls[key]
        ratio = spread(bench.ratio("igm", "direct"))
        rate = {c: spread([n * k / t for t in bench.times[c]]) for c in ("igm", "direct")}
        per_call_us = {c: spread([t / k * 1e6 for t in bench.times[c]]) for c in ("igm", "direct")}
        results[key] = {
            "ratio_igm_over_direct_time": ratio,
            "ratio_of_minimum_times": ratio_of_minimums(bench.times["igm"], bench.times["direct"]),
            "samples_per_s": rate,
            "us_per_call": per_call_us,
            "calls_per_block": k,
        }
        parts.append(
            f"{key} igm/direct {ratio['median']:.3f} ({rate['igm']['median']:.3g} vs {rate['direct']['median']:.3g} samples/s)"
        )
    summary = f"{rounds} rounds, {torch_threads} thread(s): " + "; ".join(parts)
    benchmark.extra_info.update({key: r["ratio_igm_over_direct_time"]["median"] for key, r in results.items()})
    write_result(
        "p6_sampling",
        {
            "command": ".venv/bin/python -m pytest benchmarks/test_p6_sampling.py --benchmark-only -q",
            "setup": {
                "rounds": rounds,
                "torch_threads": torch_threads,
                "block_seconds": BLOCK_SECONDS,
                "mlp": "GAN on grid25 trained 20 steps by Trainer; generator MLP 10-100-100-2",
                "dcgan": "GAN on DataInfo('x', (1, 28, 28), None, (0, 1), 'image'): DCGAN generator, 256-d noise",
                "mode": "igm.load -> eval mode; torch.inference_mode()",
            },
            "target": "igm/direct time <= 1.05",
            "cases": results,
        },
        summary,
    )
