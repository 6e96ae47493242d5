"""A small application that uses a trained igm model: load a checkpoint, sample, write a picture.

This is all another program needs, with igm and the model's plugin installed::

    import igm
    model = igm.load(path, device="cuda")          # rebuilt through the registry, eval mode
    x = model.generator.sample(64)                 # (64, *event_shape) on that device

Run it::

    python examples/load_in_app.py runs/gan/model.safetensors --device cpu -n 2000 --out app.png
    python examples/load_in_app.py runs/cgan/model.safetensors --label 3 --out three.png

``--device`` is any torch device (``cpu``, ``cuda``, ``cuda:1``, ``mps``); samples are drawn
from a CPU ``torch.Generator`` seeded with ``--seed``, so the same seed gives the same samples
on every device (up to the device's arithmetic). ``--label`` asks a conditional model for one
class. The picture is chosen by the data's kind (scatter, histogram or image grid).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import igm
from igm import save_samples


def sample_checkpoint(path: str, n: int, device: str = "cpu", seed: int = 0, label: int | None = None) -> tuple[igm.Model, torch.Tensor]:
    """The loaded model and ``n`` samples from it (on ``device``)."""
    model = igm.load(path, device=device)
    labels = None
    if label is not None:
        if model.generator.num_classes is None:
            raise igm.IgmError(f"{path} holds an unconditional model: drop --label")
        labels = torch.full((n,), label, dtype=torch.long, device=device)
    with torch.inference_mode():
        x = model.generator.sample(n, labels=labels, generator=torch.Generator().manual_seed(seed))
    return model, x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a model.safetensors written by igm")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps, ...")
    parser.add_argument("-n", type=int, default=64, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class to draw (conditional models)")
    parser.add_argument("--out", default="samples.png", help="PNG to write")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise igm.IgmError(f"--device {args.device}: CUDA is not available here; use --device cpu")
        model, x = sample_checkpoint(args.checkpoint, args.n, str(device), args.seed, args.label)
    except (igm.IgmError, RuntimeError, ValueError) as exc:  # bad path, device, label: one line
        print(f"Error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    info = model.data
    reference = torch.tensor(info.extra["means"]) if "means" in info.extra else None
    out = save_samples(x.cpu(), info.kind, Path(args.out), reference=reference, value_range=info.value_range)
    print(f"{info.name}: {model.name} from {args.checkpoint} -> {tuple(x.shape)} samples on {x.device} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
