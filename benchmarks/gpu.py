"""The GPU benchmark in one call: igm's step (eager, compiled, bf16) against a plain eager loop.

A script, not a test; it builds nothing beyond the repository. For each case it times, in ms
per training step (one critic step and one generator step, as igm's round), medians of
``--repeats`` runs of ``--steps`` steps after ``--warmup``:

- ``plain``: an expert's eager loop — the same networks and Adam settings, data resident on
  the device, batch indices drawn on the device, no host synchronisation inside the step;
- ``igm``: ``Trainer.train_step()`` (data placed on the device, losses read at log time only);
- ``igm compiled``: the same with ``compile=True`` (torch.compile, inductor);
- ``igm bf16``: the same with ``precision="bf16"`` (autocast).

Cases: the MLP GAN on grid25 (batch 256) and the DCGAN on stacked MNIST (batch 64 and 512;
MNIST from ``$IGM_MNIST`` or ``../shared/data/mnist.npz``). It also reports samples/s of
``generator.sample`` and a *floor* for each step: max(FLOPs / peak FLOP/s, bytes / bandwidth),
with the step's FLOPs counted by ``torch.utils.flop_counter`` and its bytes as four passes over
the parameters (weights, gradients, two Adam moments) plus the batch, against a matmul peak and a
copy bandwidth measured on the same device. One markdown table is printed (and written to
``benchmarks/results/gpu.md`` with a JSON beside it).

    python benchmarks/gpu.py                          # on a CUDA machine: under 5 minutes
    python benchmarks/gpu.py --device cpu --quick     # the same table on the CPU, small
    python benchmarks/gpu.py --device cpu --case mlp  # the MLP case alone (eager, compiled, bf16 on CPU)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _bench import MNIST

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(step: Callable[[], object], device: torch.device, steps: int, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    sync(device)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        runs.append((time.perf_counter() - t0) * 1000 / steps)
    return statistics.median(runs)


def peak_flops(device: torch.device, dtype: torch.dtype) -> float:
    n = 4096 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    ms = timed_ms(lambda: a @ b, device, steps=10, warmup=3, repeats=3)
    return 2 * n**3 / (ms / 1000)


def bandwidth(device: torch.device) -> float:
    x = torch.empty(64 * 2**20 // 4, device=device)
    y = torch.empty_like(x)
    ms = timed_ms(lambda: y.copy_(x), device, steps=10, warmup=3, repeats=3)
    return 2 * x.numel() * 4 / (ms / 1000)  # read and write


def build(case: dict, device: torch.device, **run):
    from igm.data import open_data
    from igm.testing import build_model
    from igm.trainer import RunConfig, Trainer

    source = open_data(case["data"])
    torch.manual_seed(0)
    model = build_model("gan", source.info)
    config = RunConfig(steps=10**9, batch_size=case["batch"], device=str(device), log_every=10**9, sample_every=0,
                       checkpoint_every=0, **run)
    return Trainer(model, source, config, None, progress=False), source


def plain_step(case: dict, device: torch.device) -> tuple[Callable[[], None], torch.nn.Module, torch.nn.Module]:
    """An expert's eager loop over the same networks: resident data, device-side indices, no sync."""
    trainer, source = build(case, device)
    model = trainer.model
    gen, critic = model.generator, model.critic
    g_opt = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batch = case["batch"]
    if case["data"].startswith("stacked-mnist"):
        digits, labels = source.mnist.x_train.to(device), source.mnist.y_train.to(device)

        def real() -> torch.Tensor:
            idx = torch.randint(digits.shape[0], (3, batch), device=device)
            return digits[idx].squeeze(2).transpose(0, 1)  # (B, 3, 28, 28)
    else:
        x = source.split("train")[0].to(device)

        def real() -> torch.Tensor:
            return x[torch.randint(x.shape[0], (batch,), device=device)]

    def step() -> None:
        fake = gen.sample(batch).detach()
        d_loss = F.softplus(-critic(real())).mean() + F.softplus(critic(fake)).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        for p in critic.parameters():
            p.requires_grad_(False)
        g_loss = F.softplus(-critic(gen.sample(batch))).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        for p in critic.parameters():
            p.requires_grad_(True)

    return step, gen, critic


def step_floor(trainer, case: dict, peak: float, bw: float) -> tuple[float, float]:
    """(FLOPs of one igm step, floor in ms) from the flop counter and the bytes the step must move."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    flops = counter.get_total_flops()
    params = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
    x, _ = next(trainer.stream)
    moved = 4 * params + 2 * x.numel() * x.element_size()
    return flops, max(flops / peak, moved / bw) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="few steps and the small cases only (a smoke run)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled rows")
    parser.add_argument("--case", choices=("all", "mlp"), default="all", help="mlp: the MLP GAN on grid25 alone")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.quick:
        args.steps, args.warmup, args.repeats = 5, 2, 1
    cases = [{"name": "MLP GAN, grid25", "data": "grid25", "batch": 256}]
    if args.case == "all" and MNIST.is_file():
        cases.append({"name": "DCGAN, stacked MNIST", "data": f"stacked-mnist:{MNIST}", "batch": 64})
        if not args.quick:
            cases.append({"name": "DCGAN, stacked MNIST", "data": f"stacked-mnist:{MNIST}", "batch": 512})
    elif args.case == "all":
        print(f"(no MNIST at {MNIST}: the DCGAN cases are skipped; set IGM_MNIST)", file=sys.stderr)
    peak32, bw = peak_flops(device, torch.float32), bandwidth(device)
    peak16 = peak_flops(device, torch.bfloat16)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    variants = {"igm": {}, "igm bf16": {"precision": "bf16"}}
    if not args.no_compile:
        variants["igm compiled"] = {"compile": True}
    rows = []
    for case in cases:
        plain, gen, _ = plain_step(case, device)
        plain_ms = timed_ms(plain, device, args.steps, args.warmup, args.repeats)
        row = {"case": f"{case['name']}, batch {case['batch']}", "plain": plain_ms}
        for label, run in variants.items():
            trainer, _ = build(case, device, **run)
            row[label] = timed_ms(trainer.train_step, device, args.steps, args.warmup, args.repeats)
            trainer.check_losses()
            if label == "igm":
                flops, floor = step_floor(trainer, case, peak32, bw)
                row["gflops"], row["floor"] = flops / 1e9, floor
        with torch.inference_mode():
            n = 10_000 if device.type == "cuda" else 1000
            ms = timed_ms(lambda: gen.sample(n), device, steps=5 if not args.quick else 1, warmup=2, repeats=args.repeats)
        row["samples/s"] = n / (ms / 1000)
        rows.append(row)
    cols = ["plain", *variants]
    head = "| case | " + " | ".join(f"{c} ms" for c in cols) + " | igm/plain | GFLOP/step | floor ms | samples/s |"
    lines = [f"Device: {name}; measured peak {peak32 / 1e12:.2f} TFLOP/s fp32, {peak16 / 1e12:.2f} bf16, "
             f"copy {bw / 1e9:.0f} GB/s; torch {torch.__version__}", "", head, "|" + "---|" * (len(cols) + 5)]
    for r in rows:
        lines.append(f"| {r['case']} | " + " | ".join(f"{r[c]:.3f}" for c in cols)
                     + f" | {r['igm'] / r['plain']:.2f} | {r['gflops']:.3f} | {r['floor']:.4f} | {r['samples/s']:,.0f} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu.md").write_text(table + "\n")
    (RESULTS / "gpu.json").write_text(json.dumps({"device": name, "rows": rows, "steps": args.steps}, indent=2) + "\n")


if __name__ == "__main__":
    main()
