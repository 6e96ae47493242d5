"""An energy landscape: the ``ebm`` family on grid25, its energy as a heat map with samples on top.

An energy-based model defines p(x) ∝ exp(−E(x) / T) through a network E; nothing draws from it
directly, so its samples come from Langevin dynamics on E. Training lowers the energy at the
data and raises it at the model's own samples until the two agree; the picture shows where the
wells formed (bright: low energy, high density) and where the chains, run from uniform noise,
came to rest (white dots; the data means are red crosses).

The model is built by name through igm's registry (the ``ebm`` plugin must be installed),
trained with igm's trainer and scored with the ``modes`` metric. Writes
``energy_landscape.png``::

    python examples/energy_landscape.py [--steps 3000] [--out energy_landscape.png]

The default ``--steps`` is the family's own budget on grid25; shorter runs show the wells
forming before every mode has one.
"""

from __future__ import annotations

import argparse
import sys

import torch
from einops import rearrange
from PIL import Image, ImageDraw

from demo_plot import titled
from igm import RunConfig, Trainer, get_registry, open_data
from igm.testing import build_model

SIZE = 420  # pixels per side of the map


def heat(values: torch.Tensor) -> Image.Image:
    """A (S, S) tensor as an RGB heat map, dark (low) to bright yellow (high), row 0 at the top."""
    v = (values - values.min()) / (values.max() - values.min()).clamp_min(1e-12)  # (S, S) in [0, 1]
    stops = torch.tensor([[20, 10, 60], [60, 40, 140], [40, 140, 140], [120, 200, 80], [250, 230, 40]], dtype=torch.float32)
    pos = v * (len(stops) - 1)
    lo = pos.floor().long().clamp(max=len(stops) - 2)
    t = (pos - lo)[..., None]
    rgb = stops[lo] * (1 - t) + stops[lo + 1] * t  # (S, S, 3)
    return Image.fromarray(rgb.round().to(torch.uint8).numpy(), "RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=0, help="training steps (0: the family's own budget)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="energy_landscape.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a small MLP: one thread is fastest, and polite on a shared machine
    if "ebm" not in get_registry().names("models"):
        print("Error: the ebm plugin is not installed (pip install igm-ebm)", file=sys.stderr)
        return 2
    data = open_data("grid25", seed=args.seed)
    model = build_model("ebm", data.info, seed=args.seed)
    defaults = model.run_defaults(data.info)
    steps = args.steps or defaults["steps"]
    run = RunConfig(steps=steps, batch_size=defaults["batch_size"], seed=args.seed, log_every=steps,
                    sample_every=0, checkpoint_every=0, device="cpu", lr_decay=defaults.get("lr_decay", "none"))
    Trainer(model, data, run, out_dir=None, progress=False).fit()
    model.eval()
    scores = get_registry().get("metrics", "modes")(model, data, n=5000, seed=args.seed)
    gen = model.generator
    x = gen.sample(1000, generator=torch.Generator().manual_seed(args.seed))

    low, high = gen.box  # the box the chains run in: the data's range plus a margin
    ys, xs = torch.meshgrid(torch.linspace(1, -1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")  # top row: high y
    grid = rearrange(torch.stack([xs, ys]), "d h w -> (h w) d")  # (S*S, 2) in box coordinates
    with torch.no_grad():
        energy = torch.cat([gen.energy(chunk) for chunk in grid.split(20_000)])
    img = heat(rearrange(-energy, "(h w) -> h w", h=SIZE))  # bright where the energy is low
    draw = ImageDraw.Draw(img)

    def px(p: torch.Tensor) -> tuple[float, float]:
        u = gen.to_box(p[None])[0]
        return float((u[0] + 1) / 2 * (SIZE - 1)), float((1 - u[1]) / 2 * (SIZE - 1))

    for p in x:
        cx, cy = px(p)
        draw.point([(cx, cy)], fill="white")
    for m in torch.tensor(data.info.extra["means"]):
        cx, cy = px(m)
        draw.line([(cx - 3, cy), (cx + 3, cy)], fill="red")
        draw.line([(cx, cy - 3), (cx, cy + 3)], fill="red")
    line = f"modes {scores['modes']}/{scores['num_modes']}, high quality {scores['high_quality']:.0%}"
    box = f"box x in [{float(low[0]):.1f}, {float(high[0]):.1f}], y in [{float(low[1]):.1f}, {float(high[1]):.1f}]"
    titled(img, f"ebm on grid25, {steps} steps: -E(x) and samples", [line, box]).save(args.out)
    print(f"ebm {line}")
    print(f"wrote {args.out}")
    return 0 if 0 <= scores["modes"] <= scores["num_modes"] == 25 else 1


if __name__ == "__main__":
    sys.exit(main())
