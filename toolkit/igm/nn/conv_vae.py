"""A small convolutional encoder/decoder pair for VAEs on square images.

::

    enc = ConvEncoder((1, 28, 28), out_features=2 * 50)   # x (N, 1, 28, 28) -> (N, 100)
    dec = ConvDecoder(50, (1, 28, 28))                     # z (N, 50) -> logits (N, 1, 28, 28)

The encoder halves the side with 4x4 stride-2 convolutions (ReLU) while it is even and larger
than 4 (28 -> 14 -> 7, 8 -> 4, 32 -> 16 -> 8 -> 4), doubling the channels from ``32 * width``,
then maps the flattened features linearly to ``out_features``. The decoder mirrors it: a linear
map to the smallest feature map, then 4x4 stride-2 transposed convolutions back to the input
side; it returns raw outputs (logits or means), the VAE applies its likelihood. With
``num_classes`` set both are conditional: one-hot labels are appended to the flattened features
(encoder) and to z (decoder).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from igm.nn.mlp import label_features


def halvings(side: int) -> int:
    """How many stride-2 halvings the pair uses for an image of this side (28 -> 2, 8 -> 1, 32 -> 3)."""
    count = 0
    while side % 2 == 0 and side > 4:
        side //= 2
        count += 1
    return count


def _check(image_shape: tuple[int, ...], width: float) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[1] != shape[2] or halvings(shape[1]) == 0:
        raise ValueError(
            f"the convolutional VAE networks need square images (C, S, S) whose side halves at least "
            f"once (8, 28, 32, 64, ...); got {shape}: use network=mlp"
        )
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    c, s, _ = shape
    return c, s, halvings(s), s >> halvings(s)


def _channels(layers: int, width: float) -> list[int]:
    return [max(1, round(32 * width * 2**i)) for i in range(layers)]


class ConvEncoder(nn.Module):
    """Images (N, C, S, S) -> features (N, out_features) (e.g. the mean and log-variance of q(z|x))."""

    def __init__(
        self, image_shape: tuple[int, ...], out_features: int, width: float = 1.0, num_classes: int | None = None
    ) -> None:
        super().__init__()
        c, _, layers, small = _check(image_shape, width)
        chans = _channels(layers, width)
        convs: list[nn.Module] = []
        for c_in, c_out in zip([c, *chans[:-1]], chans):
            convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]  # side / 2
        self.convs = nn.Sequential(*convs)
        self.num_classes = num_classes
        self.linear = nn.Linear(chans[-1] * small * small + (num_classes or 0), out_features)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = rearrange(self.convs(x), "n c h w -> n (c h w)")  # (N, C' * s * s)
        if self.num_classes is not None:
            h = torch.cat([h, label_features(labels, self.num_classes, h)], dim=1)  # (N, F + K)
        return self.linear(h)  # (N, out_features)


class ConvDecoder(nn.Module):
    """Latents (N, latent_dim) -> raw outputs (N, C, S, S) (logits or means)."""

    def __init__(
        self, latent_dim: int, image_shape: tuple[int, ...], width: float = 1.0, num_classes: int | None = None
    ) -> None:
        super().__init__()
        c, _, layers, small = _check(image_shape, width)
        chans = _channels(layers, width)[::-1]  # widest first
        self.num_classes = num_classes
        self.small, self.top = small, chans[0]
        self.linear = nn.Sequential(nn.Linear(latent_dim + (num_classes or 0), chans[0] * small * small), nn.ReLU())
        ups: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:]):
            ups += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]  # side * 2
        ups.append(nn.ConvTranspose2d(chans[-1], c, 4, stride=2, padding=1))  # last doubling, no activation
        self.ups = nn.Sequential(*ups)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes is not None:
            z = torch.cat([z, label_features(labels, self.num_classes, z)], dim=1)  # (N, L + K)
        h = rearrange(self.linear(z), "n (c h w) -> n c h w", c=self.top, h=self.small)  # (N, C', s, s)
        return self.ups(h)  # (N, C, S, S)

