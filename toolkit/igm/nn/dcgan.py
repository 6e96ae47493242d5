"""DCGAN-style convolutional generator and discriminator for small square images.

Supported image shapes are ``(C, S, S)`` with ``C`` in {1, 3} and ``S`` in {8, 28, 32}::

    G = DCGANGenerator(latent_dim=100, image_shape=(1, 28, 28))   # standard DCGAN
    D = DCGANDiscriminator((1, 28, 28))
    x = G(torch.randn(64, 100))        # (64, 1, 28, 28), in (0, 1) with the default sigmoid
    logits = D(x)                      # (64,)
    G_l = DCGANGenerator(256, (3, 28, 28), width=2.0, layout="sig")  # the SIG paper's "L" generator

Two layouts. ``standard`` (the default) is Radford et al.'s DCGAN: a linear layer to a small
base (2x2 for 8x8, 7x7 for 28x28, 4x4 for 32x32) and stride-2 transposed convolutions that
double the side, channels halving from 64·2^k (128 -> 64 for 28x28); the discriminator mirrors
it. ``sig`` (28x28 only) is the SIG paper's (Unrolled GAN's) pair for Stacked MNIST (Q2 of
BENCHMARKS.md), layer for layer. Its generator starts from nearly the same image for every z,
and GAN training collapses with it (benchmarks/README.md, Q2); ``standard`` is the default and
``sig`` is kept for the protocol. In both,
channel counts are multiplied by ``width`` (Kg for the generator, Kd for the discriminator;
the paper's sizes S, M, L are (Kg, Kd) = (1, 0.5), (1, 1), (2, 1)). With ``num_classes`` set both networks are
conditional: the generator appends one-hot labels to z, the discriminator appends K constant
one-hot label planes to its input channels, or, with ``projection=True``, adds the projection
⟨E·y, φ(x)⟩ of a learned class embedding onto its last features φ(x) to its logit (Miyato &
Koyama, "cGANs with Projection Discriminator", 2018); with ``class_norm=True`` the generator's
BatchNorms take the label's own gain and bias (:class:`ClassBatchNorm2d`, the same paper's). The discriminator has no BatchNorm by default,
so its output for one example never depends on the rest of the batch (WGAN-GP needs that).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from einops import rearrange, repeat
from einops.layers.torch import Rearrange
from torch import Tensor, nn

from igm.nn.mlp import label_features, make_out_activation

# The stride-1 "same" convs use an even kernel (4); PyTorch pads them asymmetrically (1 before,
# 2 after, like TensorFlow) and warns once that it copies the input to do so. That is intended.
warnings.filterwarnings(
    "ignore", message=r"Using padding='same' with even kernel lengths", category=UserWarning
)

SUPPORTED_SIZES = (8, 28, 32)
SUPPORTED_CHANNELS = (1, 3)
LAYOUTS = ("standard", "sig")
BASE_SIDE = {8: 2, 28: 7, 32: 4}  # standard layout: side of the first feature map


def check_image_shape(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``image_shape`` as ``(C, H, W)``; ValueError unless C in {1, 3} and H == W in {8, 28, 32}."""
    shape = tuple(int(s) for s in image_shape)
    square = len(shape) == 3 and shape[1] == shape[2]
    if not (square and shape[0] in SUPPORTED_CHANNELS and shape[1] in SUPPORTED_SIZES):
        raise ValueError(
            f"DCGAN networks support images of shape (C, S, S) with C in {{1, 3}} and S in "
            f"{{{', '.join(map(str, SUPPORTED_SIZES))}}} (8x8, 28x28 or 32x32); got {shape}"
        )
    return shape  # type: ignore[return-value]


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1."""
    return max(1, round(channels * width))


def _check_width(width: float) -> float:
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    return float(width)


def check_layout(layout: str, size: int) -> str:
    """``layout`` if it is one of LAYOUTS and fits ``size``; ValueError otherwise."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "sig" and size != 28:
        raise ValueError(f"layout 'sig' (the SIG paper's networks) is for 28x28 images, got {size}x{size}")
    return layout


class ClassBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are the class's own: ``(1 + γ_y) · BN(x) + β_y`` (Miyato & Koyama 2018).

    ``forward(x, y)`` takes x (N, C, H, W) and one-hot labels y (N, K). γ and β (K -> C each) start at 0,
    so an untrained layer is a plain BatchNorm with unit gain and no bias, whatever the class.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(num_classes, channels, bias=False)  # y (N, K) -> γ_y (N, C)
        self.bias = nn.Linear(num_classes, channels, bias=False)  # y (N, K) -> β_y (N, C)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gain = rearrange(1.0 + self.gain(y), "n c -> n c 1 1")
        return gain * self.norm(x) + rearrange(self.bias(y), "n c -> n c 1 1")  # (N, C, H, W)


Norm = Callable[[int], nn.Module]  # channels -> the generator's normalisation layer


def _bn_relu(channels: int, norm: Norm = nn.BatchNorm2d) -> list[nn.Module]:
    return [norm(channels), nn.ReLU()]


def _norm_lrelu(channels: int, batchnorm: bool) -> list[nn.Module]:
    return ([nn.BatchNorm2d(channels)] if batchnorm else []) + [nn.LeakyReLU(0.2)]


# ---------------------------------------------------------------------------------------------
# 28x28: the SIG paper's (Unrolled GAN's) MNIST networks
# ---------------------------------------------------------------------------------------------


def generator28(in_features: int, channels: int, width: float, norm: Norm = nn.BatchNorm2d) -> nn.Sequential:
    """z (N, in_features) -> (N, channels, 28, 28), before the output activation."""
    c1, c2, c3 = scaled(64, width), scaled(32, width), scaled(8, width)
    return nn.Sequential(
        nn.Linear(in_features, 4 * 4 * 64, bias=False),  # (N, 1024)
        Rearrange("n (c h w) -> n c h w", c=64, h=4, w=4),  # (N, 64, 4, 4)
        *_bn_relu(64, norm),
        nn.ConvTranspose2d(64, c1, 4, stride=1, padding=0, bias=False),  # (N, 64Kg, 7, 7)  valid
        *_bn_relu(c1, norm),
        nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1, bias=False),  # (N, 32Kg, 14, 14)  same
        *_bn_relu(c2, norm),
        nn.Conv2d(c2, c3, 4, stride=1, padding="same", bias=False),  # (N, 8Kg, 14, 14)  same
        *_bn_relu(c3, norm),
        nn.ConvTranspose2d(c3, channels, 4, stride=2, padding=1),  # (N, C, 28, 28)  same
    )


def discriminator28(in_channels: int, width: float, batchnorm: bool) -> nn.Sequential:
    """x (N, in_channels, 28, 28) -> logits (N,)."""
    d1, d2, d3 = scaled(8, width), scaled(16, width), scaled(32, width)
    return nn.Sequential(
        nn.Conv2d(in_channels, d1, 4, stride=2, padding=0),  # (N, 8Kd, 13, 13)  valid
        nn.LeakyReLU(0.2),
        nn.ZeroPad2d((1, 2, 1, 2)),  # (N, 8Kd, 16, 16)  TF "same": pad 1 left/top, 2 right/bottom
        nn.Conv2d(d1, d2, 4, stride=2, padding=0),  # (N, 16Kd, 7, 7)
        *_norm_lrelu(d2, batchnorm),
        nn.Conv2d(d2, d3, 4, stride=1, padding="same"),  # (N, 32Kd, 7, 7)  same
        *_norm_lrelu(d3, batchnorm),
        Rearrange("n c h w -> n (c h w)"),  # (N, 32Kd * 49)
        nn.Linear(d3 * 7 * 7, 1),  # (N, 1)
        Rearrange("n 1 -> n"),  # (N,)
    )


# ---------------------------------------------------------------------------------------------
# The standard layout: DCGAN doublings from a small base
# ---------------------------------------------------------------------------------------------


def _doubling_channels(size: int, width: float) -> tuple[int, list[int]]:
    """Base side (2, 7 or 4) and the hidden channel counts from the base upwards, e.g. [256, 128, 64]."""
    base = BASE_SIDE[size]
    steps = int(math.log2(size // base))  # 2 doublings for 8x8 and 28x28, 3 for 32x32
    return base, [scaled(64 * 2 ** (steps - 1 - i), width) for i in range(steps)]


def generator_doubling(
    in_features: int, channels: int, size: int, width: float, norm: Norm = nn.BatchNorm2d
) -> nn.Sequential:
    """z (N, in_features) -> (N, channels, size, size) from a base of BASE_SIDE[size] squared."""
    base, chans = _doubling_channels(size, width)  # 32: [256, 128, 64]·w; 8 and 28: [128, 64]·w
    layers: list[nn.Module] = [
        nn.Linear(in_features, chans[0] * base * base, bias=False),  # (N, c0 * b * b)
        Rearrange("n (c h w) -> n c h w", c=chans[0], h=base, w=base),  # (N, c0, b, b)
        *_bn_relu(chans[0], norm),
    ]
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),  # (N, c_out, 2s, 2s)
            *_bn_relu(c_out, norm),
        ]
    layers.append(nn.ConvTranspose2d(chans[-1], channels, 4, stride=2, padding=1))  # (N, C, size, size)
    return nn.Sequential(*layers)


def discriminator_doubling(in_channels: int, size: int, width: float, batchnorm: bool) -> nn.Sequential:
    """x (N, in_channels, size, size) -> logits (N,); the mirror of :func:`generator_doubling`."""
    base, chans = _doubling_channels(size, width)
    chans = chans[::-1]  # 32: [64, 128, 256]·w; 8 and 28: [64, 128]·w
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, chans[0], 4, stride=2, padding=1),  # (N, c0, size/2, size/2)
        nn.LeakyReLU(0.2),
    ]
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        layers += [
            nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),  # (N, c_out, s/2, s/2)
            *_norm_lrelu(c_out, batchnorm),
        ]
    layers += [
        Rearrange("n c h w -> n (c h w)"),  # (N, c_last * b * b)
        nn.Linear(chans[-1] * base * base, 1),  # (N, 1)
        Rearrange("n 1 -> n"),  # (N,)
    ]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------
# Public modules
# ---------------------------------------------------------------------------------------------


class DCGANGenerator(nn.Module):
    """Noise ``z`` (N, latent_dim) [+ labels (N,)] -> images (N, C, H, W).

    Args:
        latent_dim: size of the noise vector.
        image_shape: (C, H, W) with C in {1, 3}, H == W in {8, 28, 32}.
        width: channel multiplier (Kg in the SIG paper).
        num_classes: when set, the generator is conditional and ``forward`` needs labels.
        out_activation: None | "tanh" | "sigmoid" (match the data's value range).
        layout: "standard" (DCGAN doublings) or "sig" (the SIG paper's 28x28 generator).
        class_norm: conditional only: every BatchNorm's gain and bias are the label's own
            (:class:`ClassBatchNorm2d`), on top of the one-hot labels appended to z.
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        width: float = 1.0,
        num_classes: int | None = None,
        out_activation: str | None = "sigmoid",
        layout: str = "standard",
        class_norm: bool = False,
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be positive or None, got {num_classes}")
        channels, size, _ = check_image_shape(image_shape)
        width = _check_width(width)
        self.latent_dim, self.image_shape, self.num_classes = latent_dim, (channels, size, size), num_classes
        if class_norm and num_classes is None:
            raise ValueError("class_norm needs num_classes: it is how labels enter the generator's BatchNorms")
        in_features = latent_dim + (num_classes or 0)
        norm: Norm = (lambda c: ClassBatchNorm2d(c, num_classes)) if class_norm else nn.BatchNorm2d  # type: ignore[arg-type]
        if check_layout(layout, size) == "sig":
            self.net = generator28(in_features, channels, width, norm)
        else:
            self.net = generator_doubling(in_features, channels, size, width, norm)
        self.class_norm = class_norm
        self.out = make_out_activation(out_activation)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``z`` (N, latent_dim), ``labels`` (N,) when conditional (ignored otherwise) -> (N, C, H, W)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"DCGANGenerator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}"
            )
        if self.num_classes is None:
            return self.out(self.net(z))  # (N, C, H, W)
        y = label_features(labels, self.num_classes, z)  # (N, K)
        h = torch.cat([z, y], dim=1)  # (N, Z + K)
        if not self.class_norm:
            return self.out(self.net(h))
        for layer in self.net:
            h = layer(h, y) if isinstance(layer, ClassBatchNorm2d) else layer(h)
        return self.out(h)  # (N, C, H, W)


class DCGANDiscriminator(nn.Module):
    """Images (N, C, H, W) [+ labels (N,)] -> logits (N,).

    Args:
        image_shape: (C, H, W) with C in {1, 3}, H == W in {8, 28, 32}.
        width: channel multiplier (Kd in the SIG paper).
        num_classes: when set, the discriminator is conditional and ``forward`` needs labels.
        batchnorm: BatchNorm after every hidden conv but the first. Off by default: with it
            an example's logit depends on its batch, which breaks gradient penalties.
        layout: "standard" (DCGAN halvings) or "sig" (the SIG paper's 28x28 discriminator).
        projection: conditional only: labels enter as ⟨E·y, φ(x)⟩ added to the logit, where φ(x)
            is the input of the last linear layer and E a learned (F, K) embedding, instead of as
            input planes. ``net`` is then the unconditional network, and ``embed`` holds E.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        width: float = 1.0,
        num_classes: int | None = None,
        batchnorm: bool = False,
        layout: str = "standard",
        projection: bool = False,
    ) -> None:
        super().__init__()
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be positive or None, got {num_classes}")
        if projection and num_classes is None:
            raise ValueError("projection needs num_classes: it is how labels enter a conditional discriminator")
        channels, size, _ = check_image_shape(image_shape)
        width = _check_width(width)
        self.image_shape, self.num_classes = (channels, size, size), num_classes
        in_channels = channels + (0 if projection else num_classes or 0)
        if check_layout(layout, size) == "sig":
            self.net = discriminator28(in_channels, width, batchnorm)
        else:
            self.net = discriminator_doubling(in_channels, size, width, batchnorm)
        # the net ends in flatten -> Linear(F, 1) -> squeeze; the projection reads the Linear's input
        features = self.net[-2].in_features
        self.embed = nn.Linear(num_classes, features, bias=False) if projection else None  # y (N, K) -> (N, F)
        if self.embed is not None:  # start as the unconditional critic: a default init puts logits near ±5 (loss 4.9)
            nn.init.zeros_(self.embed.weight)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """``x`` (N, C, H, W), ``labels`` (N,) when conditional (ignored otherwise) -> logits (N,)."""
        if tuple(x.shape[1:]) != self.image_shape:
            want = ", ".join(map(str, ("N", *self.image_shape)))
            raise ValueError(f"DCGANDiscriminator expects images of shape ({want}), got {tuple(x.shape)}")
        if self.num_classes is None:
            return self.net(x)  # (N,)
        y = label_features(labels, self.num_classes, x)  # (N, K)
        if self.embed is not None:
            phi = self.net[:-2](x)  # (N, F)
            return self.net[-2:](phi) + (self.embed(y) * phi).sum(dim=1)  # (N,)
        planes = repeat(y, "n k -> n k h w", h=x.shape[2], w=x.shape[3])  # (N, K, H, W)
        return self.net(torch.cat([x, planes], dim=1))  # (N,) from (N, C + K, H, W)
