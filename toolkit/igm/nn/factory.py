"""Network choice: which of ``igm.nn``'s backbones a config asks for on given data.

A family's config names its networks with the same fields everywhere (``network``,
``latent_dim``, ``g_hidden``, ``d_hidden``, ``g_width``, ...: :class:`GeneratorConfig` holds the
generator's), and this module turns them into modules for the data at hand:

- :func:`resolve_network` — ``network="auto"`` becomes ``dcgan`` for images and ``mlp`` for
  everything else, ``latent_dim=0`` its default (10 for an MLP, 256 for a DCGAN); a setting the
  chosen network does not read is a ConfigError (``g_width`` on an MLP);
- :func:`generator_net` and :func:`critic_net` — the generator (its output squashed into the
  data's value range, :func:`out_activation`) and the critic (logits of shape (N,)) that a
  resolved config describes, conditional on ``num_classes`` labels when given
  (:func:`conditional_classes`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from igm.config import refuse_unread
from igm.data.base import DataInfo
from igm.errors import ConfigError

MLP_ONLY = ("g_hidden", "d_hidden", "g_activation", "d_activation", "g_batchnorm", "maxout_pieces")
DCGAN_ONLY = ("g_width", "d_width")


@dataclass
class GeneratorConfig:
    """The generator network and optimizer of a family: every family names them with these fields.

    :class:`igm.AdversarialConfig` extends it with the critic's; critic-free families (SIG, MMD,
    ...) use it as it is, so that one set of ``--set`` overrides picks the same generator everywhere.
    """

    network: Literal["auto", "mlp", "dcgan", "sig-dcgan"] = "auto"  # auto: dcgan for images, mlp otherwise
    latent_dim: int = 0  # 0: 10 for an MLP, 256 for a DCGAN
    g_hidden: tuple[int, ...] = (100, 100)  # MLP generator hidden sizes
    g_activation: str = "relu"  # relu | leaky_relu | tanh | elu | maxout
    g_batchnorm: bool = False
    maxout_pieces: int = 5
    g_width: float = 1.0  # DCGAN width multiplier
    lr_g: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        if self.latent_dim < 0:
            raise ConfigError("latent_dim must be positive (or 0 for the default)")


def out_activation(data: DataInfo) -> str | None:
    """The output squashing that matches the data's value range."""
    if data.value_range == (0.0, 1.0):
        return "sigmoid"
    if data.value_range == (-1.0, 1.0):
        return "tanh"
    return None


def conditional_classes(config: Any, data: DataInfo) -> int | None:
    """The number of classes a model with ``config.conditional`` conditions on (None if it does not).

    Raises ConfigError when a conditional model is asked for on data without labels.
    """
    if not config.conditional:
        return None
    if not data.num_classes:
        raise ConfigError(
            f"conditional=true needs a labelled data source; '{data.name}' has no labels: "
            "train on one with labels (digits, mnist, npz with y) or --set conditional=false"
        )
    return data.num_classes


def dcgan_layout(network: str) -> str | None:
    """The :mod:`igm.nn.dcgan` layout a ``network`` name asks for (None: not a DCGAN).

    ``dcgan`` is the standard DCGAN; ``sig-dcgan`` the SIG paper's 28x28 networks (BENCHMARKS Q2),
    kept for the protocol (the standard generator trains better; see igm.nn.dcgan).
    """
    return {"dcgan": "standard", "sig-dcgan": "sig"}.get(network)


def check_dcgan_data(network: str, data: DataInfo, requested: str = "") -> None:
    """ConfigError unless ``data`` has an image shape the DCGAN ``network`` supports.

    ``requested`` is the ``network`` the user gave (``"auto"`` resolves to ``dcgan`` on images).
    """
    from igm.nn.dcgan import SUPPORTED_SIZES, check_image_shape, check_layout

    shape = tuple(data.event_shape)
    sizes = (28,) if network == "sig-dcgan" else SUPPORTED_SIZES
    try:
        check_layout(dcgan_layout(network) or "", check_image_shape(shape)[1])
    except ValueError:
        sides = " or ".join(f"{s}x{s}" for s in sizes)
        asked = f"network=auto picks {network} for images, which" if requested == "auto" else f"network={network}"
        fix = "use --set network=mlp" + ("" if data.kind == "image" else " (or network=auto)")
        raise ConfigError(
            f"{asked} needs images of 1 or 3 channels, {sides}; '{data.name}' has shape {shape}: {fix}"
        ) from None


def resolve_network(config: Any, data: DataInfo) -> Any:
    """``config`` with ``network="auto"`` and ``latent_dim=0`` replaced by their values for ``data``.

    A network setting the chosen network does not read (``g_width`` on an MLP, ``g_hidden`` on a
    DCGAN, ``maxout_pieces`` without a maxout layer) is a ConfigError, not a silent no-op.
    """
    network = config.network
    if network == "auto":
        network = "dcgan" if data.kind == "image" else "mlp"
    if dcgan_layout(network) is not None:
        check_dcgan_data(network, data, requested=config.network)
    unread = DCGAN_ONLY if network == "mlp" else MLP_ONLY
    if "maxout" not in (getattr(config, "g_activation", ""), getattr(config, "d_activation", "")):
        unread = (*unread, "maxout_pieces")
    refuse_unread(config, unread, f"network={network}")
    latent = config.latent_dim or (10 if network == "mlp" else 256)
    return dataclasses.replace(config, network=network, latent_dim=latent)


def forget_unread(config: Any) -> Any:
    """A stored, resolved ``config`` with the settings its network does not read put back at their defaults.

    For checkpoints: a file stores every field, those its network never read included, at the
    defaults of the version that wrote it; when a default changes, they must not read as settings.
    """
    if not isinstance(config, GeneratorConfig) or config.network == "auto":
        return config
    unread = DCGAN_ONLY if config.network == "mlp" else MLP_ONLY
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    return dataclasses.replace(config, **{name: defaults[name] for name in unread if name in defaults})


def generator_net(
    config: Any,
    data: DataInfo,
    num_classes: int | None = None,
    out_shape: tuple[int, ...] | None = None,
    out_act: str | None | Literal["data"] = "data",
) -> nn.Module:
    """The generator network a resolved :class:`GeneratorConfig` (or AdversarialConfig) describes for ``data``.

    ``out_act="data"`` squashes the output into the data's value range (see :func:`out_activation`).
    """
    from igm.nn import MLP, DCGANGenerator

    act = out_activation(data) if out_act == "data" else out_act
    layout = dcgan_layout(config.network)
    if layout is not None:
        class_norm = bool(num_classes) and bool(getattr(config, "g_class_norm", False))
        return DCGANGenerator(config.latent_dim, data.event_shape, config.g_width, num_classes, act, layout, class_norm)
    return MLP(
        (config.latent_dim,),
        out_shape or data.event_shape,
        config.g_hidden,
        activation=config.g_activation,
        batchnorm=config.g_batchnorm,
        maxout_pieces=config.maxout_pieces,
        num_classes=num_classes,
        out_activation=act,
    )


def critic_net(config: Any, data: DataInfo, num_classes: int | None = None) -> nn.Module:
    """The critic a resolved AdversarialConfig describes for ``data``: logits of shape (N,)."""
    from igm.nn import MLP, DCGANDiscriminator

    layout = dcgan_layout(config.network)
    if layout is not None:
        projection = bool(num_classes) and bool(getattr(config, "d_projection", False))
        return DCGANDiscriminator(data.event_shape, config.d_width, num_classes, layout=layout, projection=projection)
    return MLP(
        data.event_shape,
        (),
        config.d_hidden,
        activation=config.d_activation,
        maxout_pieces=config.maxout_pieces,
        num_classes=num_classes,
        spectral_norm=config.d_spectral_norm,
    )
