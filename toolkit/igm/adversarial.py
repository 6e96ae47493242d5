"""The adversarial recipe: a generator against a critic under a divergence (GAN, cGAN, IWGAN, GAN-SI, ...).

:class:`AdversarialModel` is the shared model of every critic-based family. Its players are
``critic`` (``critic_steps`` per round) then ``generator``; its networks come from
:mod:`igm.nn.factory` by the data's kind (MLPs for points and vectors, DCGAN for images); its
divergence is any registered one with a critic (jsd, kl, wasserstein, or a plugin's), looked up
by name where the model is planned (:meth:`AdversarialModel.parts`, called by the registry's
builders — ``igm fit``, ``igm.load``, ``igm.testing.build_model``) and passed to ``__init__``, so
that building a model never discovers plugins. A model built directly, ``GAN(config, data)``,
gets the core's built-in divergences by name.

Options of the divergence live in the model's config under their own names (``loss``,
``direction``, ``gp_weight``, ``gp_one_sided``, ``r1_weight``: :data:`DIVERGENCE_OPTIONS`); one
that the chosen divergence does not read is a ConfigError, never silently ignored. ``ema`` keeps an
exponential moving average of the generator, which is what users sample (its decay warmed up over the first
updates: :data:`EMA_WARMUP`).

Defaults by data and divergence: the networks, rates, Adam's β2 and the ``gp_*`` and ``r1_weight`` options of
:class:`AdversarialConfig` are "auto" (:data:`AUTO_VALUES`) until :func:`resolve_defaults` makes
them concrete from one table per kind of data — :data:`POINT_DEFAULTS` on points,
:data:`IMAGE_DEFAULTS` on images, :data:`OTHER_DEFAULTS` elsewhere — with the entries of
:data:`DIVERGENCE_DEFAULTS` for that kind and the chosen divergence laid over it (a divergence not
named there, a plugin's included, gets the table as it is). A divergence option that no table sets
(``gp_weight`` off points) stays None, and the divergence uses its own default. A value the user
sets is never replaced. The step budget (:meth:`AdversarialModel.run_defaults`) depends on the
data alone. A conditional DCGAN (cgan on images) also gets a projection critic, class-conditional BatchNorm in its
generator and an averaged generator unless told otherwise (:func:`resolve_conditional`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from igm.config import fill_auto, refuse_unread
from igm.data.base import Batch, DataInfo
from igm.divergences.base import Divergence
from igm.errors import ConfigError
from igm.generators import Generator, ImplicitGenerator
from igm.models import IMAGE_RUN_DEFAULTS, Model, Player, bind_labels, points_steps, small_mixture
from igm.nn.factory import (
    MLP_ONLY,
    GeneratorConfig,
    conditional_classes,
    critic_net,
    dcgan_layout,
    generator_net,
    resolve_network,
)

if TYPE_CHECKING:
    from igm.registry import Registry


@dataclass
class AdversarialConfig(GeneratorConfig):
    """Generator (every :class:`~igm.nn.factory.GeneratorConfig` field), critic and divergence of a critic-based family."""

    divergence: str = "jsd"  # any registered divergence with a critic: jsd, kl, wasserstein
    loss: Literal["non-saturating", "minimax"] = "non-saturating"  # jsd's generator loss
    direction: Literal["reverse", "forward"] = "reverse"  # kl's direction
    gp_weight: float | None = None  # wasserstein's gradient penalty; none: 1 on points, the divergence's 10 otherwise
    gp_one_sided: bool | None = None  # wasserstein: penalise only slopes above 1 (WGAN-LP); none: on points only
    g_hidden: tuple[int, ...] = ()  # MLP generator sizes; (): 256,256 on points (wasserstein: 256,256,256), else 100,100
    d_hidden: tuple[int, ...] = ()  # MLP critic hidden sizes; (): 256,256 on points (wasserstein: 128,128), 100 otherwise
    d_activation: str = "auto"  # relu | leaky_relu | tanh | elu | maxout; auto: leaky_relu on points, relu otherwise
    d_width: float = 1.0  # DCGAN critic width multiplier (Kd)
    d_projection: bool | None = None  # conditional DCGAN critic: labels by projection on its features, not input planes; none: on there
    g_class_norm: bool | None = None  # conditional DCGAN generator: each BatchNorm's gain and bias are the label's; none: on there
    conditional: bool = False  # feed labels to both networks (needs a labelled data source)
    lr_g: float = 0.0  # 0: 3e-3 on points (wasserstein: 2e-3), 2e-4 on images (wasserstein: 1e-4), 1e-4 otherwise
    lr_d: float = 0.0  # 0: 3e-3 on points (wasserstein: 6e-3), 2e-4 on images (wasserstein: 1e-4), 1e-4 otherwise
    beta1: float | None = None  # Adam's β1; none: 0 for wasserstein on points, 0.5 otherwise
    beta2: float = 0.0  # Adam's β2; 0: 0.9 on points, 0.999 otherwise
    critic_steps: int = 1  # critic steps per generator step
    d_spectral_norm: bool = False  # MLP critic: spectral normalisation of every layer
    r1_weight: float | None = None  # jsd/kl: R1 penalty (γ) on the critic's gradient at the data; none: 1 for jsd on images, else 0
    ema: float | None = None  # decay of an average of the generator's weights, sampled by users; 0: none; none: 0.999 for a conditional DCGAN, else 0

    # what a checkpoint written before a field existed means by leaving it out (read by igm.load): label planes
    ABSENT_FROM_OLDER_FILES: ClassVar[dict[str, Any]] = {"d_projection": False, "g_class_norm": False}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.critic_steps < 1:
            raise ConfigError("critic_steps must be at least 1")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must lie in [0, 1), got {self.ema}")


# what the "auto" values of AdversarialConfig become: on points (Q1, benchmarks/README.md: gan with
# jsd 22/25 modes on grid25 and 7-8/8 on ring8 by PacGAN's rule in 5 of 5 seeds), and on other data
POINT_DEFAULTS = {"g_hidden": (256, 256), "d_hidden": (256, 256), "d_activation": "leaky_relu", "lr_g": 3e-3,
                  "lr_d": 3e-3, "beta1": 0.5, "beta2": 0.9}
OTHER_DEFAULTS = {"g_hidden": (100, 100), "d_hidden": (100,), "d_activation": "relu", "lr_g": 1e-4, "lr_d": 1e-4,
                  "beta1": 0.5, "beta2": 0.999}
# on images (the DCGAN networks: no MLP setting is read), Radford et al.'s Adam 2e-4 for both players:
# at 1e-4 the critic wins within 3,000 steps on MNIST (critic loss ~0.008, generator ~5.4); at 2e-4
# the losses stay balanced (1.1 / 0.9) and classifier-IS reaches 7.0 at 10k steps (issue 16,
# benchmarks/README.md "probes towards classifier-IS")
IMAGE_DEFAULTS = {**OTHER_DEFAULTS, "lr_g": 2e-4, "lr_d": 2e-4}
# a divergence's own departures from its kind's table (its options included; a divergence option
# that no table sets stays None and takes the divergence's own default). wasserstein (WGAN-GP) on
# points: its critic's loss is linear and never saturates, so the critic must outpace the generator
# (lr_d 3x lr_g), or the fakes circle the data instead of landing on it; a penalty of 10 holds the
# critic too smooth to find modes 0.01-0.05 wide, so 1, and one-sided (WGAN-LP), with a third
# hidden layer in the generator: grid25 HQ 0.17-0.62 against 0.08-0.20, ring8 0.88-0.95 against
# 0.79-0.91 (5 seeds; benchmarks/README.md "WGAN-GP on points"). Adam without momentum there
# (β1 = 0): with β1 0.5 the samples stayed on the lines between grid25's modes (HQ 0.29-0.53); with 0
# every seed has 25/25 and HQ 0.90-0.93, ring8 8/8 (benchmarks/README.md "WGAN-GP on grid25: Adam
# without momentum"). Its critic is half as wide (128, 128): the penalty's double backward made a step
# ~1.5x a jsd step, and grid25 ran over 3 minutes at a slow hour (270 s); at 128 it keeps 25/25 (HQ
# 0.88-0.93) and 8/8 (HQ 0.88-0.94) in 5 seeds each, at 0.85-1.0x the time of a jsd run beside it
# (benchmarks/README.md "WGAN-GP on points: a narrower critic"). On images it keeps Gulrajani et al.'s 1e-4, β1 0.5 and two-sided penalty:
# 2e-4 was measured for jsd only. jsd on images: an R1 penalty of
# γ = 1 (Mescheder et al. 2018) on the critic's gradient at the data. Without it the critic wins on
# stacked MNIST within 500 steps (loss 0.004) and the generator draws one checkerboard (4 modes of
# 1,000 at 1,000 steps); with it the losses stay near 1.2 / 0.9: 943 modes at 1,500 steps, 1,000 at 10k.
# On MNIST it lifts classifier-IS at 10k steps from 7.02 to 7.34, at ~45% more time a step
# (benchmarks/README.md "R1 on images").
DIVERGENCE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "points": {"wasserstein": {"lr_g": 2e-3, "lr_d": 6e-3, "beta1": 0.0, "gp_weight": 1.0, "gp_one_sided": True,
                               "g_hidden": (256, 256, 256), "d_hidden": (128, 128)}},
    "image": {"wasserstein": {"lr_g": 1e-4, "lr_d": 1e-4}, "jsd": {"r1_weight": 1.0}},
}
AUTO_VALUES = {"g_hidden": (), "d_hidden": (), "d_activation": "auto", "lr_g": 0.0, "lr_d": 0.0, "beta1": None,
               "beta2": 0.0, "gp_weight": None, "gp_one_sided": None, "r1_weight": None}
POINT_STEPS, SMALL_MIXTURE_STEPS = 10_000, 4_000  # run_defaults on points; on a mixture of <= 8 components


# the generator that gan (jsd) and iwgan take on points other than a small mixture when g_hidden is unset:
# a third hidden layer folds the latent space more sharply between grid25's modes (iwgan seed 4: HQ 0.754
# -> 0.934; gan seed 4: 0.792 -> 0.939); on ring8 it collapsed iwgan in 2 of 3 seeds (benchmarks/README.md)
DEEP_POINT_G_HIDDEN = (256, 256, 256)


def deep_point_generator(config: Any, data: DataInfo) -> Any:
    """``config`` with ``g_hidden`` = ``DEEP_POINT_G_HIDDEN`` where it is unset, the network is an MLP and
    ``data`` is points other than a small mixture (:func:`igm.small_mixture`); else ``config`` as it is."""
    if data.kind != "points" or small_mixture(data) or config.network not in ("auto", "mlp"):
        return config
    return fill_auto(config, {"g_hidden": DEEP_POINT_G_HIDDEN}, {"g_hidden": ()})


def resolve_defaults(config: AdversarialConfig, data: DataInfo) -> AdversarialConfig:
    """``config`` (network resolved) with its "auto" values made concrete for ``data``'s kind.

    MLP settings are filled only for an MLP; a DCGAN keeps them at "auto" (it reads none of them).
    """
    table = defaults_table(config.divergence, data)
    if config.network != "mlp":
        table = {name: value for name, value in table.items() if name not in MLP_ONLY}
    return fill_auto(config, table, AUTO_VALUES)


def defaults_table(divergence: str, data: DataInfo) -> dict[str, Any]:
    """The concrete value of every "auto" field for ``divergence`` on ``data``'s kind."""
    table = {"points": POINT_DEFAULTS, "image": IMAGE_DEFAULTS}.get(data.kind, OTHER_DEFAULTS)
    return {**table, **DIVERGENCE_DEFAULTS.get(data.kind, {}).get(divergence, {})}


CONDITIONAL_DCGAN_EMA = 0.999  # the "auto" ema of a conditional DCGAN; every other model: 0 (none)
# the average's warm-up: its t-th update (t = 0, 1, ...) uses the decay min(ema, (1 + t) / (EMA_WARMUP + t)), so a
# short run samples an average of its recent weights, not one still weighted to its first ones (0.999^2000 = 0.14)
EMA_WARMUP = 10


def resolve_conditional(config: AdversarialConfig, num_classes: int | None) -> AdversarialConfig:
    """``config`` with what a conditional DCGAN gets by default made concrete, unless the user set it: the critic
    takes labels by projection (``d_projection``), the generator's BatchNorms take the label's gain and bias
    (``g_class_norm``), users sample an average of the generator's weights (``ema`` 0.999). Any other model: all off.

    On MNIST, seed 0, cgan's label accuracy at 10,000 steps: 0.956 with label planes, 0.971 with the projection
    critic (Miyato & Koyama 2018), 0.983 with it and the average, 0.984 with all three; at 2,000 steps 0.790 with the
    average, 0.840 with the class norms too (benchmarks/README.md "A projection critic for cgan" and "cgan on MNIST:
    class-conditional BatchNorm and an averaged generator"). gan on MNIST gained nothing from the average (classifier-IS
    7.37 against 7.42), so it stays off there. The two label paths asked for without labels or on an MLP are a
    ConfigError. Stored concrete, they read the same in every file written since; a file from before names neither
    and means off (``ABSENT_FROM_OLDER_FILES``); it stores its ``ema``.
    """
    dcgan = dcgan_layout(config.network) is not None
    conditional_dcgan = dcgan and num_classes is not None
    for name in ("d_projection", "g_class_norm"):
        asked = getattr(config, name)
        if asked and num_classes is None:
            raise ConfigError(f"{name}=True needs labels (conditional=true): drop it, or train a conditional model")
        if asked and not dcgan:
            raise ConfigError(f"{name}=True has no effect with network={config.network}: drop it (or choose network=dcgan)")
        if asked is None:
            config = dataclasses.replace(config, **{name: conditional_dcgan})
    if config.ema is None:
        config = dataclasses.replace(config, ema=CONDITIONAL_DCGAN_EMA if conditional_dcgan else 0.0)
    return config


def builtin_divergence(name: str) -> type[Divergence]:
    """The core's divergence called ``name``, for a model built without the registry's lookup."""
    from igm.divergences import BUILTIN_DIVERGENCES

    if name not in BUILTIN_DIVERGENCES:
        raise ConfigError(
            f"divergence '{name}' is not one of the core's ({', '.join(BUILTIN_DIVERGENCES)}): build the model "
            "through the registry (igm fit, igm.testing.build_model) so that plugins' divergences are found"
        )
    return BUILTIN_DIVERGENCES[name]


# model fields that only some divergences read
DIVERGENCE_OPTIONS = ("loss", "direction", "gp_weight", "gp_one_sided", "r1_weight")
# divergence options that became "auto" (None): what files written before then store for them, whatever the divergence
STORED_DEFAULTS = {"gp_weight": 10.0, "r1_weight": 0.0}


def divergence_options(divergence_cls: type, config: Any) -> dict[str, Any]:
    """The divergence's own config fields, read from model config fields of the same name.

    A divergence option set for a divergence that does not read it (``gp_weight`` with jsd) is a ConfigError.
    An option left at None takes the divergence's own default; an unread one at its
    :data:`STORED_DEFAULTS` value is what an older file stores, not a setting.
    """
    names = {f.name for f in dataclasses.fields(divergence_cls.Config)}
    unread = tuple(n for n in DIVERGENCE_OPTIONS if n not in names)
    stored = {n: None for n in unread if n in STORED_DEFAULTS and getattr(config, n, None) == STORED_DEFAULTS[n]}
    refuse_unread(dataclasses.replace(config, **stored), unread, f"divergence={config.divergence}")
    return {name: getattr(config, name) for name in names if getattr(config, name, None) is not None}


class AdversarialModel(Model):
    """A generator against a critic under a divergence; players ``critic`` then ``generator``."""

    Config: ClassVar[type] = AdversarialConfig

    @classmethod
    def parts(cls, config: AdversarialConfig, registry: Registry) -> dict[str, Any]:
        """The divergence class named by ``config.divergence``, looked up once where the model is planned."""
        return {"divergence": registry.get("divergences", config.divergence)}

    def __init__(self, config: AdversarialConfig, data: DataInfo, divergence: type[Divergence] | None = None) -> None:
        config = resolve_defaults(resolve_network(config, data), data)
        num_classes = conditional_classes(config, data)
        config = resolve_conditional(config, num_classes)
        latent = config.latent_dim
        super().__init__(config, data)
        self.num_classes = num_classes
        div_cls = divergence or builtin_divergence(config.divergence)
        if not div_cls.needs_critic:
            raise ConfigError(
                f"divergence '{config.divergence}' has no critic; an adversarial model needs one that has (jsd, kl, wasserstein, ...)"
            )
        self.divergence = div_cls(**divergence_options(div_cls, config))
        self.generator = ImplicitGenerator(self.build_generator_net(), latent, data.event_shape, self.num_classes)
        if config.ema:  # users sample the average (saved as generator.*); the player trains online.*
            self.online = self.generator
            self.generator = copy.deepcopy(self.online).requires_grad_(False)
        self.critic = self.build_critic()
        # the average's update count t (None: no average, or a file written before its warm-up)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64) if config.ema else None)

    @property
    def trained(self) -> Generator:
        """The generator the players train: ``generator`` itself, or the one it averages when ``ema`` is set."""
        return self.online if self.config.ema else self.generator

    def ema_decay(self) -> Tensor | float:
        """The decay of the average's next update: ``ema``, warmed up over its first updates (:data:`EMA_WARMUP`).

        A 0-dim tensor on the model's device (read without a host sync, so a GPU run keeps its deferred syncs);
        a file written before the warm-up holds no ``ema_updates`` and keeps the plain decay it was trained with.
        """
        if self.ema_updates is None:
            return self.config.ema
        t = self.ema_updates.double()
        return ((1 + t) / (EMA_WARMUP + t)).clamp(max=self.config.ema)

    def update_ema(self) -> None:
        """Move the averaged generator towards the trained one (called before each generator step)."""
        if self.generator is self.trained or not self.training:
            return
        weight = 1.0 - self.ema_decay()  # float64 on the model's device, or a float
        with torch.no_grad():
            for avg, now in zip(self.generator.parameters(), self.trained.parameters()):
                avg.lerp_(now, weight.to(avg.dtype) if isinstance(weight, Tensor) else weight)
            for avg, now in zip(self.generator.buffers(), self.trained.buffers()):
                avg.copy_(now)
            if self.ema_updates is not None:
                self.ema_updates += 1

    def prepare_load(self, tensors: Mapping[str, Tensor]) -> None:
        """A file with an average written before its warm-up existed has no ``ema_updates``: drop the counter."""
        super().prepare_load(tensors)
        if self.config.ema and "ema_updates" not in tensors:
            self.register_buffer("ema_updates", None)

    def build_generator_net(self, out_shape: tuple[int, ...] | None = None) -> nn.Module:
        return generator_net(self.config, self.data, self.num_classes, out_shape)

    def build_critic(self) -> nn.Module:
        return critic_net(self.config, self.data, self.num_classes)

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        """Critic-based families: DCGAN-sized runs for images, MLP-sized ones otherwise."""
        if data.kind == "image":
            return dict(IMAGE_RUN_DEFAULTS)
        if data.kind == "points":
            return {"steps": points_steps(data, SMALL_MIXTURE_STEPS, POINT_STEPS), "batch_size": 256, "lr_decay": "cosine"}
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
