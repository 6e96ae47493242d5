"""Read an igm checkpoint with only safetensors and torch, and sample from its generator.

igm is not imported (not even installed, if you like): the file describes itself. The script
reads the metadata (format, model, plugin, the resolved config and the data description as
JSON), rebuilds the MLP generator the config describes — the same layers, in the same order,
as ``igm.nn.MLP`` — loads the ``generator.net.net.*`` tensors strictly, and draws samples in
the order igm draws them, so that for the same seed it returns exactly what
``igm.load(path).generator.sample(n, generator=torch.Generator().manual_seed(seed))`` returns::

    python examples/read_without_igm.py runs/gan/model.safetensors -n 1000 --seed 0 --out x.safetensors

It covers MLP generators: implicit ones (``gan``, ``gan-si``, ``cgan``, ``iwgan``, ``lsgan``, ...:
``x = net(z)``) and semi-implicit ones whose config names a ``likelihood`` (``sig``:
``theta = net(z)``, then ``x ~ N(theta, sigma²)`` or ``Bernoulli(theta)``). DCGAN generators
(image data) are refused with a one-line error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

FORMATS = ("1", "2")  # the checkpoint formats this reader understands (docs/checkpoints.md)
PREFIX = "generator.net.net."  # ImplicitGenerator.net (an MLP) -> its nn.Sequential, .net


class ReadError(Exception):
    """A checkpoint this reader cannot rebuild; main() prints it as one line."""


class Maxout(nn.Module):
    """``units`` outputs, each the max over ``pieces`` linear pieces (tensor names .linear, .norm)."""

    def __init__(self, in_features: int, units: int, pieces: int, batchnorm: bool) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)
        self.norm = nn.BatchNorm1d(units * pieces) if batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.linear(x))  # (N, U*P)
        return h.reshape(h.shape[0], self.units, self.pieces).amax(dim=-1)  # (N, U)


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(), "elu": nn.ELU()}[name]


def build_mlp(config: dict, in_features: int, out_features: int, out_act: str | None) -> nn.Sequential:
    """The layers igm.nn.MLP builds: per hidden width Linear (+BatchNorm) + activation, or Maxout."""
    layers: list[nn.Module] = []
    width = in_features
    for units in config["g_hidden"]:
        if config["g_activation"] == "maxout":
            layers.append(Maxout(width, units, config["maxout_pieces"], config["g_batchnorm"]))
        else:
            layers.append(nn.Linear(width, units))
            if config["g_batchnorm"]:
                layers.append(nn.BatchNorm1d(units))
            layers.append(activation(config["g_activation"]))
        width = units
    layers.append(nn.Linear(width, out_features))
    layers.append({None: nn.Identity(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}[out_act])
    return nn.Sequential(*layers)


def read(path: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The file's metadata and its generator-network tensors (names without the prefix)."""
    with safe_open(path, framework="pt") as fh:
        metadata = fh.metadata() or {}
        tensors = {k[len(PREFIX):]: fh.get_tensor(k) for k in fh.keys() if k.startswith(PREFIX)}
    return metadata, tensors


class Sampler:
    """The generator a checkpoint describes, rebuilt from its metadata and tensors."""

    def __init__(self, metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> None:
        if metadata.get("igm.format") not in FORMATS:
            raise ReadError(f"this reader knows checkpoint formats {', '.join(FORMATS)}, the file has {metadata.get('igm.format')!r}")
        config, data = json.loads(metadata["igm.config"]), json.loads(metadata["igm.data"])
        if config.get("network") != "mlp":
            raise ReadError(f"model '{metadata['igm.model']}' has a {config.get('network')!r} generator; this reader rebuilds MLPs only")
        self.event_shape = tuple(data["event_shape"])
        self.latent_dim = config["latent_dim"]
        self.num_classes = data["num_classes"] if config.get("conditional") else None
        self.likelihood = config.get("likelihood")  # semi-implicit families name their kernel
        self.sigma = config.get("sigma")
        if self.likelihood == "bernoulli":
            out_act = "sigmoid"
        elif self.likelihood == "gaussian":
            out_act = None
        else:  # implicit: squash into the data's value range, as igm.nn.factory.out_activation does
            out_act = {(0.0, 1.0): "sigmoid", (-1.0, 1.0): "tanh"}.get(tuple(data["value_range"] or ()), None)
        in_features = self.latent_dim + (self.num_classes or 0)
        self.net = build_mlp(config, in_features, math.prod(self.event_shape), out_act)
        self.net.load_state_dict(tensors, strict=True)
        self.net.eval()

    @torch.no_grad()
    def sample(self, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """n samples (n, *event_shape), drawing labels, z and the kernel noise in igm's order."""
        gen = torch.Generator().manual_seed(seed)
        h_labels = None
        if self.num_classes is not None:
            h_labels = torch.randint(self.num_classes, (n,), generator=gen) if labels is None else labels
        z = torch.randn((n, self.latent_dim), generator=gen)  # (n, latent_dim)
        h = z if h_labels is None else torch.cat([z, F.one_hot(h_labels, self.num_classes).float()], dim=1)
        x = self.net(h).reshape(n, *self.event_shape)  # (n, *event_shape)
        if self.likelihood == "gaussian":
            x = x + self.sigma * torch.randn(tuple(x.shape), generator=gen)
        elif self.likelihood == "bernoulli":
            x = (torch.rand(tuple(x.shape), generator=gen) < x).to(x.dtype)
        return x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a model.safetensors written by igm")
    parser.add_argument("-n", type=int, default=16, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class of every sample (conditional models)")
    parser.add_argument("--out", default=None, help="write the samples to this .safetensors file")
    args = parser.parse_args(argv)
    try:
        metadata, tensors = read(args.checkpoint)
    except Exception as exc:  # a missing or damaged file: one line
        print(f"Error: cannot read {args.checkpoint} as safetensors ({exc})", file=sys.stderr)
        return 2
    if "igm.model" not in metadata:
        print(f"Error: {args.checkpoint} is not an igm checkpoint (no igm.* metadata)", file=sys.stderr)
        return 2
    for key in ("igm.format", "igm.model", "igm.plugin", "igm.plugin_version", "igm.version", "igm.step"):
        print(f"{key:20s} {metadata.get(key, '')}")
    print(f"{'igm.data':20s} {metadata['igm.data']}")
    try:
        sampler = Sampler(metadata, tensors)
    except (ReadError, KeyError, RuntimeError) as exc:  # RuntimeError: tensors that do not fit the config
        print(f"Error: {args.checkpoint}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    labels = None if args.label is None else torch.full((args.n,), args.label, dtype=torch.long)
    x = sampler.sample(args.n, args.seed, labels)
    print(f"samples {tuple(x.shape)}: mean {x.mean().item():.4f}, std {x.std().item():.4f}")
    if args.out:
        save_file({"samples": x.contiguous()}, args.out, metadata={"source": args.checkpoint, "seed": str(args.seed)})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
