"""Models: the trainable unit a family defines, and the adversarial building block.

A :class:`Model` owns its networks, names its players and gives a loss per player::

    class MyModel(Model):
        name = "my-model"
        Config = MyConfig                      # a dataclass; `--set key=value` reaches it
        def __init__(self, config, data):      # data: DataInfo (event shape, classes, range)
            super().__init__(config, data)
            self.generator = ImplicitGenerator(...)
        def players(self):                     # who is optimised, how, and how often per round
            return [Player("generator", list(self.generator.parameters()), lr=1e-3)]
        def loss(self, player, batch):         # batch = (x, labels or None)
            return ...                         # a scalar tensor (or {"loss": t, "extra": t})

The trainer steps the players in order each round, ``player.steps`` times each, drawing a
fresh batch for every step; during a player's step only its own parameters collect gradients.
``model.generator`` is what a checkpoint's user samples from.

:class:`AdversarialModel` is the shared recipe of every critic-based family (GAN, cGAN, IWGAN,
GAN-SI, ...): a generator, a critic and a divergence, with networks chosen from ``igm.nn`` by
the data's kind (MLPs for points and vectors, DCGAN for images).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from igm.config import EmptyConfig
from igm.errors import ConfigError
from igm.data.base import Batch, DataInfo
from igm.generators import Generator, ImplicitGenerator


DEFAULT_RUN_STEPS = 5000  # RunConfig's default steps (kept here: the trainer imports this module)


@dataclass
class Player:
    """One optimised party of a model: its parameters, optimizer settings and steps per round."""

    name: str
    parameters: list[nn.Parameter]
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    steps: int = 1
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.0  # for sgd
    clip_grad_norm: float | None = None

    def make_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(self.parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return torch.optim.Adam(self.parameters, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)




class Model(nn.Module):
    """Base of every family: networks, players and a loss per player."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = EmptyConfig
    generator: Generator

    def __init__(self, config: Any, data: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.data = data
        # the run's total steps, for schedules that are a share of the run; plan() sets it
        self.run_steps = int(type(self).run_defaults(data).get("steps", DEFAULT_RUN_STEPS))

    def players(self) -> list[Player]:
        raise NotImplementedError

    def loss(self, player: str, batch: Batch) -> Tensor | Mapping[str, Tensor]:
        raise NotImplementedError

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        """Suggested run settings for this data (e.g. ``{"steps": 20000}``); the user's win."""
        return {}

    def plan(self, steps: int) -> str | None:
        """Called by the trainer once, before its first step, with the run's total ``steps``.

        Schedules a family keeps (an annealed bandwidth, ...) are a share of ``self.run_steps``
        and a pure function of (step, steps), so a resumed run follows the very same schedule.
        Until a trainer calls it, ``run_steps`` is the family's ``run_defaults`` budget. Returns
        one line to print when ``steps`` is shorter than the family needs on this data, else None.
        """
        self.run_steps = int(steps)
        return None

    def prepare_load(self, tensors: Mapping[str, Tensor]) -> None:
        """Called before a strict load: resize buffers whose size is set in training (e.g. persistent chains)."""


IMAGE_RUN_DEFAULTS = {"steps": 10_000, "batch_size": 64, "sample_every": 500}  # DCGAN-sized runs on images


def bind_labels(net: Callable[..., Tensor], labels: Tensor | None) -> Callable[[Tensor], Tensor]:
    """``net`` as a function of x alone: ``net`` itself, or ``x -> net(x, labels)`` for a conditional one."""
    if labels is None:
        return net
    return lambda x: net(x, labels)


def short_run_note(model: Model, steps: int) -> str | None:
    """One line when ``steps`` is below ``model``'s tuned budget on its data (its ``run_defaults``), else None.

    For a family's :meth:`Model.plan`: schedules that are shares of the run compress with it,
    but a run much shorter than the tuned one may stop before the samples settle.
    """
    need = int(model.run_defaults(model.data).get("steps", 0))
    if steps >= need:
        return None
    return (
        f"note: {model.name} on {model.data.name} is tuned for {need:,} steps; {steps:,} may stop before "
        "its samples settle (figures in benchmarks/README.md)"
    )


def instantiate(model_cls: type[Model], config: Any, data: DataInfo, name: str | None = None) -> Model:
    """Build ``model_cls(config, data)`` once its size is known to fit in memory.

    The model is first built on PyTorch's ``meta`` device, which allocates nothing, to count
    its parameters and buffers; training needs about four copies of the parameters (weights,
    gradients, two Adam moments). A config the model rejects (a ``ValueError`` from its
    constructor) is a :class:`~igm.errors.ConfigError`; a too-large one is a ``DataError`` from
    :func:`igm.limits.check_allocation` (``IGM_MEMORY_LIMIT`` overrides the budget). ``name``,
    the name the class was registered under, is stamped on the model for its checkpoints.
    """
    from igm.limits import check_allocation

    def build() -> Model:
        try:
            return model_cls(config, data)
        except (ValueError, OverflowError) as exc:
            raise ConfigError(f"'{model_cls.name}' model config is invalid: {exc}") from None

    try:
        with torch.device("meta"):
            shadow = build()
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - a constructor that cannot run on meta is checked by the real build
        shadow = None
    if shadow is not None:
        params = sum(p.numel() * p.element_size() for p in shadow.parameters())
        buffers = sum(b.numel() * b.element_size() for b in shadow.buffers())
        check_allocation(
            4 * params + buffers,
            f"model '{name or model_cls.name}' ({sum(p.numel() for p in shadow.parameters()):,} parameters)",
            "choose smaller sizes in its config",
        )
    model = build()
    if name is not None:
        model.name = name  # the registered name (an alias, a class without one): what its checkpoints say
    return model


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


@dataclass
class AdversarialConfig:
    """Generator, critic and divergence of a critic-based family."""

    divergence: str = "jsd"  # any registered divergence with a critic: jsd, kl, wasserstein
    loss: Literal["non-saturating", "minimax"] = "non-saturating"  # jsd's generator loss
    direction: Literal["reverse", "forward"] = "reverse"  # kl's direction
    gp_weight: float = 10.0  # wasserstein's gradient penalty
    network: Literal["auto", "mlp", "dcgan", "sig-dcgan"] = "auto"  # auto: dcgan for images, mlp otherwise
    latent_dim: int = 0  # 0: 10 for an MLP, 256 for a DCGAN
    g_hidden: tuple[int, ...] = (100, 100)  # MLP generator hidden sizes
    d_hidden: tuple[int, ...] = (100,)  # MLP critic hidden sizes
    g_activation: str = "relu"
    d_activation: str = "relu"  # relu | leaky_relu | tanh | elu | maxout
    g_batchnorm: bool = False
    maxout_pieces: int = 5
    g_width: float = 1.0  # DCGAN width multipliers (Kg, Kd)
    d_width: float = 1.0
    conditional: bool = False  # feed labels to both networks (needs a labelled data source)
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    critic_steps: int = 1  # critic steps per generator step
    d_spectral_norm: bool = False  # MLP critic: spectral normalisation of every layer
    r1_weight: float = 0.0  # jsd/kl: R1 penalty (γ) on the critic's gradient at the data; 0: none
    ema: float = 0.0  # decay of an exponential moving average of the generator's weights, sampled by users; 0: none

    def __post_init__(self) -> None:
        if self.critic_steps < 1:
            raise ConfigError("critic_steps must be at least 1")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must lie in [0, 1), got {self.ema}")
        if self.latent_dim < 0:
            raise ConfigError("latent_dim must be positive (or 0 for the default)")


@dataclass
class GeneratorConfig:
    """The generator network and optimizer of a critic-free family (SIG, MMD, ...).

    The field names are those of :class:`AdversarialConfig`, so that one set of ``--set``
    overrides picks the same generator for every family.
    """

    network: Literal["auto", "mlp", "dcgan", "sig-dcgan"] = "auto"  # auto: dcgan for images, mlp otherwise
    latent_dim: int = 0  # 0: 10 for an MLP, 256 for a DCGAN
    g_hidden: tuple[int, ...] = (100, 100)  # MLP generator hidden sizes
    g_activation: str = "relu"
    g_batchnorm: bool = False
    maxout_pieces: int = 5
    g_width: float = 1.0  # DCGAN width multiplier
    lr_g: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        if self.latent_dim < 0:
            raise ConfigError("latent_dim must be positive (or 0 for the default)")


MLP_ONLY = ("g_hidden", "d_hidden", "g_activation", "d_activation", "g_batchnorm", "maxout_pieces")
DCGAN_ONLY = ("g_width", "d_width")


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


def refuse_unread(config: Any, names: tuple[str, ...], where: str) -> None:
    """ConfigError naming the first of ``names`` that ``config`` sets away from its default: nothing reads it."""

    for field in dataclasses.fields(config):
        if field.name not in names or field.default is dataclasses.MISSING:
            continue
        value = getattr(config, field.name)
        if value != field.default and not (isinstance(value, (list, tuple)) and tuple(value) == tuple(field.default)):
            raise ConfigError(
                f"{field.name}={value!r} has no effect with {where}: drop it (or choose a setting that reads it)"
            )


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


def dcgan_layout(network: str) -> str | None:
    """The :mod:`igm.nn.dcgan` layout a ``network`` name asks for (None: not a DCGAN).

    ``dcgan`` is the standard DCGAN; ``sig-dcgan`` the SIG paper's 28x28 networks (BENCHMARKS Q2),
    kept for the protocol (the standard generator trains better; see igm.nn.dcgan).
    """
    return {"dcgan": "standard", "sig-dcgan": "sig"}.get(network)


def generator_net(
    config: Any,
    data: DataInfo,
    num_classes: int | None = None,
    out_shape: tuple[int, ...] | None = None,
    out_act: str | None | Literal["data"] = "data",
) -> nn.Module:
    """The generator network a (resolved) Generator/AdversarialConfig describes for ``data``.

    ``out_act="data"`` squashes the output into the data's value range (see :func:`out_activation`).
    """
    from igm.nn import MLP, DCGANGenerator

    act = out_activation(data) if out_act == "data" else out_act
    layout = dcgan_layout(config.network)
    if layout is not None:
        return DCGANGenerator(config.latent_dim, data.event_shape, config.g_width, num_classes, act, layout)
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


DIVERGENCE_OPTIONS = ("loss", "direction", "gp_weight", "r1_weight")  # model fields that only some divergences read


def divergence_options(divergence_cls: type, config: Any) -> dict[str, Any]:
    """The divergence's own config fields, read from model config fields of the same name.

    A divergence option set for a divergence that does not read it (``gp_weight`` with jsd) is a ConfigError.
    """
    names = {f.name for f in dataclasses.fields(divergence_cls.Config)}
    refuse_unread(config, tuple(n for n in DIVERGENCE_OPTIONS if n not in names), f"divergence={config.divergence}")
    return {name: getattr(config, name) for name in names if hasattr(config, name)}


class AdversarialModel(Model):
    """A generator against a critic under a divergence; players ``critic`` then ``generator``."""

    Config: ClassVar[type] = AdversarialConfig

    def __init__(self, config: AdversarialConfig, data: DataInfo) -> None:
        from igm.registry import get_registry

        config = resolve_network(config, data)
        latent = config.latent_dim
        super().__init__(config, data)
        self.num_classes = conditional_classes(config, data)
        registry = get_registry()
        div_cls = registry.get("divergences", config.divergence)
        if not div_cls.needs_critic:
            with_critic = [n for n in registry.names("divergences") if registry.get("divergences", n).needs_critic]
            raise ConfigError(
                f"divergence '{config.divergence}' has no critic; an adversarial model needs one of: {', '.join(with_critic)}"
            )
        self.divergence = div_cls(**divergence_options(div_cls, config))
        self.generator = ImplicitGenerator(self.build_generator_net(), latent, data.event_shape, self.num_classes)
        if config.ema:  # users sample the average (saved as generator.*); the player trains online.*
            self.online = self.generator
            self.generator = copy.deepcopy(self.online).requires_grad_(False)
        self.critic = self.build_critic()

    @property
    def trained(self) -> Generator:
        """The generator the players train: ``generator`` itself, or the one it averages when ``ema`` is set."""
        return self.online if self.config.ema else self.generator

    def update_ema(self) -> None:
        """Move the averaged generator towards the trained one (called before each generator step)."""
        if self.generator is self.trained or not self.training:
            return
        decay = self.config.ema
        with torch.no_grad():
            for avg, now in zip(self.generator.parameters(), self.trained.parameters()):
                avg.lerp_(now, 1.0 - decay)
            for avg, now in zip(self.generator.buffers(), self.trained.buffers()):
                avg.copy_(now)

    def build_generator_net(self, out_shape: tuple[int, ...] | None = None) -> nn.Module:
        return generator_net(self.config, self.data, self.num_classes, out_shape)

    def build_critic(self) -> nn.Module:
        from igm.nn import MLP, DCGANDiscriminator

        c, data = self.config, self.data
        layout = dcgan_layout(c.network)
        if layout is not None:
            return DCGANDiscriminator(data.event_shape, c.d_width, self.num_classes, layout=layout)
        return MLP(
            data.event_shape,
            (),
            c.d_hidden,
            activation=c.d_activation,
            maxout_pieces=c.maxout_pieces,
            num_classes=self.num_classes,
            spectral_norm=c.d_spectral_norm,
        )

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        """Critic-based families: DCGAN-sized runs for images, MLP-sized ones otherwise."""
        if data.kind == "image":
            return dict(IMAGE_RUN_DEFAULTS)
        return {"steps": 5_000, "batch_size": 256}

    def players(self) -> list[Player]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return [
            Player("critic", list(self.critic.parameters()), lr=c.lr_d, betas=betas, steps=c.critic_steps),
            Player("generator", list(self.trained.parameters()), lr=c.lr_g, betas=betas),
        ]

    def critic_fn(self, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
        """The critic as a function of x alone (labels bound for conditional models)."""
        return bind_labels(self.critic, labels if self.num_classes is not None else None)

    def fake(self, real: Tensor, labels: Tensor | None) -> Tensor:
        """As many samples of the trained generator as real ones (with the same labels when conditional)."""
        return self.trained.sample(real.shape[0], labels if self.num_classes is not None else None)

    def loss(self, player: str, batch: Batch) -> Tensor | Mapping[str, Tensor]:
        real, labels = batch
        labels = labels if self.num_classes is not None else None
        if player == "critic":
            with torch.no_grad():
                fake = self.fake(real, labels)
            return self.divergence.critic_loss(self.critic_fn(labels), real, fake)
        self.update_ema()
        fake = self.fake(real, labels)
        return self.generator_loss(real, fake, labels)

    def generator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor | Mapping[str, Tensor]:
        """The generator's loss on a batch; families that reweight or regularise override this."""
        return self.divergence.generator_loss(self.critic_fn(labels), real, fake)
