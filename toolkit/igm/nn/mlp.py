"""A configurable multilayer perceptron for generators and critics on small data.

``MLP(in_shape, out_shape, hidden)`` flattens each input example, runs it through the hidden
layers and reshapes the result to ``out_shape``. With ``out_shape == ()`` it returns one number
per example, shape ``(N,)``, which is what critics return (logits). Examples::

    # SIG paper, 2-D mixtures: generator 10-d noise -> 2x100 ReLU -> 2, critic 1x100
    G = MLP((10,), (2,), [100, 100])
    D = MLP((2,), (), [100])
    # PacGAN: generator 4x400 ReLU + BatchNorm; critic 3 maxout layers of 200 units, 5 pieces
    G = MLP((2,), (2,), [400] * 4, batchnorm=True)
    D = MLP((2 * pack,), (), [200] * 3, activation="maxout", maxout_pieces=5)
    # conditional: one-hot labels are concatenated to the flattened input
    G = MLP((10,), (2,), [100, 100], num_classes=25)
    y = G(z, labels)

``one_hot`` (labels -> float one-hot) and the activation factories are shared with the
convolutional networks in :mod:`igm.nn.dcgan`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "maxout")
OUT_ACTIVATIONS = (None, "tanh", "sigmoid")


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Integer labels (N,) -> one-hot float tensor (N, num_classes).

    A float (N, num_classes) tensor is taken as already one-hot (or soft) and passed through,
    so class interpolations can be fed to a conditional network directly.
    """
    if labels.ndim == 2 and labels.shape[1] == num_classes and labels.is_floating_point():
        return labels.to(dtype)  # (N, K)
    if labels.ndim != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be an integer tensor of shape (N,) or a float (N, {num_classes}); "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    if labels.device.type == "cpu" and labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}); got range [{int(labels.min())}, {int(labels.max())}]"
        )
    return F.one_hot(labels.long(), num_classes).to(dtype)  # (N, K)


def label_features(labels: Tensor | None, num_classes: int, like: Tensor) -> Tensor:
    """One-hot ``labels`` (N, K) on ``like``'s device and dtype, checked against its batch size."""
    if labels is None:
        raise ValueError(f"this network is conditional on {num_classes} classes: pass labels")
    y = one_hot(labels, num_classes, dtype=like.dtype).to(like.device)  # (N, K)
    if y.shape[0] != like.shape[0]:
        raise ValueError(f"got {y.shape[0]} labels for a batch of {like.shape[0]} examples")
    return y


def make_activation(name: str) -> nn.Module:
    """The element-wise activation called ``name`` (not maxout, which is a layer of its own)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "tanh":
        return nn.Tanh()
    if name == "elu":
        return nn.ELU()
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def make_out_activation(name: str | None) -> nn.Module:
    """Identity, Tanh or Sigmoid for ``out_activation`` = None, "tanh" or "sigmoid"."""
    if name is None:
        return nn.Identity()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"unknown out_activation {name!r}; choose None, 'tanh' or 'sigmoid'")


class Maxout(nn.Module):
    """Maxout layer: ``units`` outputs, each the max over ``pieces`` linear pieces."""

    def __init__(self, in_features: int, units: int, pieces: int, batchnorm: bool = False) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"maxout_pieces must be at least 1, got {pieces}")
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)  # (N, in) -> (N, U*P)
        self.norm = nn.BatchNorm1d(units * pieces) if batchnorm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.linear(x))  # (N, U*P)
        h = rearrange(h, "n (u p) -> n u p", p=self.pieces)  # (N, U, P)
        return h.amax(dim=-1)  # (N, U)


class MLP(nn.Module):
    """Fully connected network from ``(N, *in_shape)`` to ``(N, *out_shape)``.

    Args:
        in_shape: shape of one input example, e.g. ``(10,)`` for 10-d noise.
        out_shape: shape of one output example; ``()`` gives ``(N,)`` (critic logits).
        hidden: widths of the hidden layers (may be empty: then a single linear map).
        activation: relu | leaky_relu (slope 0.2) | tanh | elu | maxout.
        batchnorm: BatchNorm1d after each hidden linear layer (before the activation).
        maxout_pieces: pieces per maxout unit when ``activation == "maxout"``.
        num_classes: when set, the network is conditional and ``forward`` needs labels.
        out_activation: None | "tanh" | "sigmoid", applied to the output.
        spectral_norm: normalise every linear layer's weight by its spectral norm (Miyato et al.,
            2018), which bounds the network's Lipschitz constant; meant for critics.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        hidden: Sequence[int],
        activation: str = "relu",
        batchnorm: bool = False,
        maxout_pieces: int = 5,
        num_classes: int | None = None,
        out_activation: str | None = None,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be positive or None, got {num_classes}")
        if any(units < 1 for units in hidden):
            raise ValueError(f"hidden layer sizes must be positive, got {list(hidden)}")
        if maxout_pieces < 1:
            raise ValueError(f"maxout_pieces must be at least 1, got {maxout_pieces}")
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)
        self.num_classes = num_classes
        in_features = math.prod(self.in_shape) + (num_classes or 0)
        out_features = math.prod(self.out_shape)

        layers: list[nn.Module] = []
        width = in_features
        for units in hidden:
            if activation == "maxout":
                layers.append(Maxout(width, units, maxout_pieces, batchnorm))  # (N, w) -> (N, units)
            else:
                layers.append(nn.Linear(width, units))  # (N, w) -> (N, units)
                if batchnorm:
                    layers.append(nn.BatchNorm1d(units))
                layers.append(make_activation(activation))
            width = units
        layers.append(nn.Linear(width, out_features))  # (N, w) -> (N, prod(out_shape))
        layers.append(make_out_activation(out_activation))
        self.net = nn.Sequential(*layers)
        if spectral_norm:  # every weight divided by its largest singular value (one power iteration per call)
            for layer in self.net.modules():
                if isinstance(layer, nn.Linear):
                    nn.utils.parametrizations.spectral_norm(layer)

        # reshapes only where the shapes need them (a flat vector in and out needs none: no per-call cost)
        self._flatten_in = len(self.in_shape) != 1
        self._unflatten_out = self.out_shape != (out_features,)
        # einops pattern that unflattens (N, prod(out_shape)) to (N, *out_shape)
        names = [f"d{i}" for i in range(len(self.out_shape))]
        self._out_pattern = f"n ({' '.join(names)}) -> n {' '.join(names)}" if names else "n 1 -> n"
        self._out_sizes = dict(zip(names, self.out_shape))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """``x`` (N, *in_shape), ``labels`` (N,) ints when conditional -> (N, *out_shape).

        Labels are ignored by an unconditional network.
        """
        if tuple(x.shape[1:]) != self.in_shape:
            want = ", ".join(map(str, ("N", *self.in_shape)))
            raise ValueError(f"MLP expects input of shape ({want}), got {tuple(x.shape)}")
        h = rearrange(x, "n ... -> n (...)") if self._flatten_in else x  # (N, prod(in_shape))
        if self.num_classes is not None:
            h = torch.cat([h, label_features(labels, self.num_classes, h)], dim=1)  # (N, D + K)
        y = self.net(h)  # (N, prod(out_shape))
        if not self._unflatten_out:
            return y
        if not self.out_shape:
            return y.squeeze(1)  # (N,) critic logits
        return rearrange(y, self._out_pattern, **self._out_sizes)  # (N, *out_shape)
