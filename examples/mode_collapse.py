"""Mode collapse: a GAN on the 8-Gaussian ring beside GAN-SI (Yin & Zhou), same networks and steps.

A GAN's generator is rewarded for samples the critic finds real, not for covering the data, so
it often settles on a few of the eight modes and hops between them. GAN-SI adds the
semi-implicit mixture likelihood of the data (``lam · H_M``) to the generator's loss: every
data point must be likely under a Gaussian mixture centred at the generator's samples, which
pulls mass to every mode.

Both models are built by name through igm's registry (the ``gan`` and ``gan-si`` plugins must
be installed; without ``gan-si`` only the GAN is shown), trained with igm's trainer, and scored
with the ``modes`` metric (modes captured out of 8 within 3 std = 0.03, share of high-quality
samples) and, more leniently, by the modes that hold 1% of the samples within 0.1. Writes
``mode_collapse.png`` (two scatter plots, data means as red crosses)::

    python examples/mode_collapse.py [--steps 2000] [--out mode_collapse.png]

Short runs vary with the seed; ``--steps 5000`` or more shows the difference reliably.
"""

from __future__ import annotations

import argparse
import sys

import torch

from demo_plot import side_by_side, titled
from igm import RunConfig, Trainer, get_registry, open_data, scatter
from igm.testing import build_model


def train_and_score(name: str, steps: int, seed: int) -> tuple[torch.Tensor, dict]:
    """Train model ``name`` on ring8 for ``steps``; its samples (2000, 2) and mode scores."""
    data = open_data("ring8", seed=seed)
    model = build_model(name, data.info, seed=seed)
    run = RunConfig(steps=steps, batch_size=256, seed=seed, log_every=steps, sample_every=0, checkpoint_every=0, device="cpu")
    Trainer(model, data, run, out_dir=None, progress=False).fit()
    model.eval()
    scores = get_registry().get("metrics", "modes")(model, data, n=10_000, seed=seed)
    with torch.no_grad():
        x = model.generator.sample(2000, generator=torch.Generator().manual_seed(seed))
    return x, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="mode_collapse.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and polite on a shared machine
    models = [m for m in ("gan", "gan-si") if m in get_registry().names("models")]
    if "gan" not in models:
        print("Error: the gan plugin is not installed (pip install igm-gan)", file=sys.stderr)
        return 2
    if "gan-si" not in models:
        print("note: the gan-si plugin is not installed; showing the GAN alone")
    means = torch.tensor(open_data("ring8", seed=args.seed).info.extra["means"])
    panels, ok = [], True
    for name in models:
        x, s = train_and_score(name, args.steps, args.seed)
        near = int(((torch.cdist(x, means) < 0.1).float().mean(0) > 0.01).sum())  # modes with 1% of samples within 0.1
        line = f"near (0.1) {near}/8 modes; metric 'modes': {s['modes']}/{s['num_modes']}, high quality {s['high_quality']:.0%}"
        print(f"{name:7s} {line}")
        ok &= 0 <= near <= 8 and 0 <= s["modes"] <= s["num_modes"] == 8 and 0.0 <= s["high_quality"] <= 1.0
        bounds = (-1.6, 1.6, -1.6, 1.6)
        panels.append(titled(scatter(x, reference=means, size=400, bounds=bounds), f"{name}, {args.steps} steps", [line]))
    side_by_side(panels).save(args.out)
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
