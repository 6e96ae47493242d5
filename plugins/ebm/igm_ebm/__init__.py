"""The EBM family: a neural energy E(x; θ) sampled by Langevin dynamics (Du & Mordatch, 2019).

The model is p(x) ∝ exp(−E(x; θ) / T) with E any network: an MLP by default (ELU for points,
SiLU for images), or the DCGAN discriminator of ``igm.nn`` for images (``network=conv``). Maximum likelihood has the
gradient ∇θ mean E(data) − ∇θ E_p[E(x)], the second mean over samples of the model itself, so
the one player, ``energy``, minimises the contrastive loss

    L = mean_i E(x_i) − mean_m E(x̃_m) + α · (mean_i E(x_i)² + mean_m E(x̃_m)²),

with ``x̃`` detached negative samples and α (``alpha``) a small penalty on the energies'
magnitude that keeps their offset from drifting. The negatives come from ``langevin_steps``
steps of Langevin dynamics

    x ← x − (ε/2) ∇E(x) + √ε · s · ξ,    ξ ~ N(0, I),

(ε ``step_size``, s ``noise``) whose stationary law is exp(−E / s²): a noise scale below 1 is
a temperature T = s² below 1, and the energy learns to be E_true · T. The chains start from a
persistent replay buffer of ``buffer_size`` states (the batch's chains are drawn from it
without replacement and written back), a share ``reinit`` of them restarted from uniform noise
at every step, so that new modes keep being found (Du & Mordatch's 95 % / 5 %; ``reinit=1`` is
Nijkamp et al.'s short-run MCMC from noise).

Chains run in the coordinates u of a box that holds the data, mapped to [−1, 1] per
dimension (so a step size means the same on grid25 as on ring8 or on images): for images the
data's value range, for points the first batch's range widened by ``margin`` of its span on
either side. The box and the replay buffer are buffers of the model: they live in the
checkpoint, and the chains' noise comes from the global torch RNG, which the trainer saves, so
a resumed run continues exactly. ``clamp`` keeps the chains inside the box. ``data_noise``
adds Gaussian noise to the data in box coordinates, reflected back into the box: binary pixels
lie on the box's corners, where clamped chains that reach a corner stay.

Points and images have their own defaults (the "auto" values: :data:`POINT_DEFAULTS`,
:data:`IMAGE_DEFAULTS`). On images the chains are short-run MCMC from noise (``reinit=1``,
Nijkamp et al., 2019), so that ``sample`` runs the chains that training shaped, from the same
noise; it runs them a little longer (60 steps against 40), which clears most of the speckle
the 40 leave.

``model.generator`` is an :class:`EBMGenerator`: ``sample(n)`` runs ``sample_steps`` Langevin
steps from uniform noise over the box; ``sample_from(x, steps)`` runs the chain from given data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

import igm
from igm import MLP, Batch, ConfigError, DataInfo, DCGANDiscriminator, Generator, Model, Player, check_allocation, randn

__version__ = "0.1.0"
__all__ = ["EBM", "EBMConfig", "EBMGenerator", "IMAGE_DEFAULTS", "POINT_DEFAULTS", "contrastive_loss", "langevin", "reflect", "resolve_defaults"]


ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "tanh": nn.Tanh, "silu": nn.SiLU}  # smooth ones


Auto = Literal["auto"]


@dataclass
class EBMConfig:
    """EBM settings: the energy network, the Langevin sampler, the replay buffer, Adam.

    Fields set to "auto" (and ``hidden`` left empty) take the values of :data:`POINT_DEFAULTS`
    for points and other vectors, :data:`IMAGE_DEFAULTS` for images, when the model is built.
    """

    network: Literal["auto", "mlp", "conv"] = "auto"  # auto: mlp; conv: the DCGAN discriminator (images)
    hidden: tuple[int, ...] = ()  # MLP hidden sizes; (): 128,128 on points, 512,512 on images
    activation: str = "auto"  # MLP activation, a smooth one (Langevin follows ∇E): elu | tanh | silu; auto: elu on points, silu on images
    gain: float | Auto = "auto"  # MLP: the first layer's pre-activations times gain, so its features are as sharp as the modes
    width: float = 1.0  # conv channel multiplier
    langevin_steps: int | Auto = "auto"  # K: Langevin steps per update
    step_size: float | Auto = "auto"  # ε, in box coordinates (the box is [-1, 1] per dimension)
    noise: float | Auto = "auto"  # s: noise scale; the chains draw exp(-E / s²)
    clamp: bool = True  # keep the chains inside the box
    buffer_size: int = 10_000  # replay buffer states
    reinit: float | Auto = "auto"  # share of the batch's chains restarted from uniform noise each step
    margin: float = 0.1  # points: the box is the first batch's range widened by this share of its span on each side
    alpha: float | Auto = "auto"  # weight of the energy-magnitude penalty mean E(data)² + mean E(samples)²
    data_noise: float | Auto = "auto"  # std of Gaussian noise added to the data (box coordinates), reflected into the box
    lr: float | Auto = "auto"
    beta1: float | Auto = "auto"  # Adam's β1
    beta2: float = 0.999
    sample_steps: int | Auto = "auto"  # Langevin steps of generator.sample, from noise

    def __post_init__(self) -> None:
        def given(*names: str) -> list[Any]:
            return [getattr(self, n) for n in names if getattr(self, n) != "auto"]

        if any(v < 1 for v in given("langevin_steps")) or self.buffer_size < 1 or any(v < 0 for v in given("sample_steps")):
            raise ConfigError("langevin_steps and buffer_size must be at least 1, sample_steps at least 0")
        if not (all(v > 0 for v in given("step_size", "lr")) and all(v >= 0 for v in given("noise")) and self.width > 0):
            raise ConfigError("step_size, lr and width must be positive, noise 0 or positive")
        if any(not 0.0 <= v <= 1.0 for v in given("reinit")):
            raise ConfigError(f"reinit is a share of the chains: it must lie in [0, 1], got {self.reinit}")
        if any(v < 0 for v in given("alpha", "data_noise")) or self.margin < 0:
            raise ConfigError("alpha, data_noise and margin must be 0 or positive")
        if self.activation != "auto" and self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)} (smooth: Langevin follows ∇E), got {self.activation!r}")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden sizes must be positive, got {list(self.hidden)}")


# what the "auto" values become (how each table was tuned: benchmarks/README.md, "EBM (issue 20)").
# Points: an ELU MLP with sharp first-layer features, short chains from a replay buffer, a large lr with cosine decay.
POINT_DEFAULTS: dict[str, Any] = {
    "network": "mlp", "hidden": (128, 128), "activation": "elu", "gain": 60.0, "langevin_steps": 10, "step_size": 0.01,
    "noise": 0.05, "reinit": 0.05, "alpha": 0.1, "data_noise": 0.0, "lr": 1e-2, "beta1": 0.0, "sample_steps": 200,
}
# Images: short-run MCMC from noise (Nijkamp et al., 2019), so that sample() runs the very chains training shaped.
IMAGE_DEFAULTS: dict[str, Any] = {
    "network": "mlp", "hidden": (512, 512), "activation": "silu", "gain": 1.0, "langevin_steps": 40, "step_size": 20.0,
    "noise": 0.002, "reinit": 1.0, "alpha": 0.01, "data_noise": 0.1, "lr": 1e-3, "beta1": 0.5, "sample_steps": 60,
}


def resolve_defaults(config: EBMConfig, data: DataInfo) -> EBMConfig:
    """``config`` with its "auto" values (and an empty ``hidden``) replaced by those of ``data``'s kind."""
    table = IMAGE_DEFAULTS if data.kind == "image" else POINT_DEFAULTS
    if data.kind == "image" and config.network == "auto" and _first_release(config):
        config = dataclasses.replace(config, network="conv")  # what "auto" built on images then
    unset = {name: getattr(config, name) in ("auto", (), []) for name in table}
    return dataclasses.replace(config, **{name: value for name, value in table.items() if unset[name]})


def _first_release(config: EBMConfig) -> bool:
    """True for a config stored by the plugin's first release, whose "auto" network was the conv energy on images.

    That release wrote every field but ``network`` as a number and had no ``data_noise``; since then every
    field of the tables is stored resolved, so "auto" beside concrete values is only found in those files.
    """
    return config.data_noise == "auto" and all(
        getattr(config, name) not in ("auto", (), []) for name in POINT_DEFAULTS if name not in ("network", "data_noise")
    )


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Uniform draws on [−1, 1) on ``device``, from ``generator`` (any device) or the global RNG."""
    if generator is None:
        return 2 * torch.rand(shape, device=device) - 1
    return (2 * torch.rand(shape, generator=generator, device=generator.device) - 1).to(device)


def langevin(
    energy: Callable[[Tensor], Tensor],
    x: Tensor,
    steps: int,
    step_size: float,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
    bounds: tuple[float, float] | None = None,
) -> Tensor:
    """``steps`` Langevin steps ``x ← x − (ε/2)∇E(x) + √ε·noise·ξ`` from ``x`` (n, ...); detached.

    At ``noise=1`` the chain's stationary law is exp(−E) (up to the step's discretisation
    error, small when ε is small against the energy's curvature); ``bounds`` clamps after
    each step. ``energy`` maps (n, ...) to (n,); no parameter collects gradients.
    """
    scale = math.sqrt(step_size) * noise
    with torch.inference_mode(False), torch.enable_grad():  # gradients in x, even under no_grad or inference_mode
        x = x.detach().clone()  # a normal tensor, also when x was made in inference mode
        for _ in range(steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(x).sum(), x)
            x = x.detach() - 0.5 * step_size * grad
            if scale:
                x = x + scale * randn(tuple(x.shape), generator, x.device)
            if bounds is not None:
                x = x.clamp(*bounds)
    return x


def reflect(u: Tensor) -> Tensor:
    """``u`` folded back into [−1, 1] at its faces (a value up to 2 outside lands as far inside)."""
    return torch.where(u > 1, 2 - u, torch.where(u < -1, -2 - u, u))


def contrastive_loss(e_data: Tensor, e_samples: Tensor, alpha: float) -> Tensor:
    """``mean E(data) − mean E(samples) + α (mean E(data)² + mean E(samples)²)`` from energies (B,), (M,)."""
    return e_data.mean() - e_samples.mean() + alpha * (e_data.pow(2).mean() + e_samples.pow(2).mean())


class Gain(nn.Module):
    """``x -> gain · x`` after the first layer: sharp features (and a gain-fold learning rate) without large weights."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: Tensor) -> Tensor:
        return self.gain * x


class EBMGenerator(Generator):
    """An energy network and its Langevin sampler, over the box ``box`` (2, *event): low, high."""

    def __init__(
        self,
        energy: nn.Module,
        event_shape: tuple[int, ...],
        step_size: float,
        noise: float,
        sample_steps: int,
        clamp: bool = True,
        value_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(event_shape)
        self.energy = energy
        self.step_size, self.noise, self.sample_steps, self.clamp = step_size, noise, sample_steps, clamp
        low, high = value_range or (-1.0, 1.0)
        self.register_buffer("box", torch.stack([torch.full(event_shape, low), torch.full(event_shape, high)]))

    def to_box(self, x: Tensor) -> Tensor:
        """Data ``x`` (n, *event) in box coordinates, [−1, 1] inside the box."""
        low, high = self.box
        return 2 * (x - low) / (high - low) - 1

    def from_box(self, u: Tensor) -> Tensor:
        low, high = self.box
        return low + (u + 1) / 2 * (high - low)

    def chain(self, u: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        """``steps`` Langevin steps from ``u`` (n, *event) in box coordinates."""
        return langevin(self.energy, u, steps, self.step_size, self.noise, generator, (-1.0, 1.0) if self.clamp else None)

    def sample_from(self, x: Tensor, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``steps`` (default ``sample_steps``) Langevin steps from data ``x`` (n, *event)."""
        steps = self.sample_steps if steps is None else steps
        return self.from_box(self.chain(self.to_box(x.to(self.box.dtype)), steps, generator))

    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        u = uniform((n, *self.event_shape), generator, self.device)
        return self.from_box(self.chain(u, self.sample_steps, generator))


class EBM(Model):
    """A neural energy-based model: one player, the contrastive loss against Langevin samples."""

    name = "ebm"
    Config = EBMConfig

    def __init__(self, config: EBMConfig, data: DataInfo) -> None:
        config = resolve_defaults(config, data)
        super().__init__(config, data)
        self.generator = EBMGenerator(
            self.build_energy(), data.event_shape, config.step_size, config.noise, config.sample_steps,
            config.clamp, data.value_range,
        )
        check_allocation(4 * config.buffer_size * math.prod(data.event_shape), f"a replay buffer of {config.buffer_size:,}", "use a smaller buffer_size")
        # the replay buffer (buffer_size, *event), in box coordinates; filled (and, for points, the box set) at the first batch
        self.register_buffer("replay", torch.empty(0, *data.event_shape))

    def build_energy(self) -> nn.Module:
        c, data = self.config, self.data
        if c.network == "conv":
            try:
                return DCGANDiscriminator(data.event_shape, c.width)
            except ValueError as exc:
                raise ConfigError(f"network=conv on '{data.name}': {exc}; use --set network=mlp") from None
        features = math.prod(data.event_shape)
        first = nn.Linear(features, c.hidden[0])  # (N, D) -> (N, H0); its hyperplanes cross the box, gain makes them sharp
        if c.activation == "silu":  # not one of igm.MLP's: the same layers, built here
            widths = [*c.hidden, 1]
            layers = [m for a, b in zip(widths[:-2], widths[1:-1]) for m in (nn.Linear(a, b), nn.SiLU())]
            rest: nn.Module = nn.Sequential(*layers, nn.Linear(widths[-2], 1), nn.Flatten(0))  # (N, H0) -> (N,)
        else:
            rest = MLP((c.hidden[0],), (), c.hidden[1:], activation=c.activation)
        return nn.Sequential(nn.Flatten(), first, Gain(c.gain), ACTIVATIONS[c.activation](), rest)

    def players(self) -> list[Player]:
        c = self.config
        return [Player("energy", list(self.generator.energy.parameters()), lr=c.lr, betas=(c.beta1, c.beta2))]

    def prepare_load(self, tensors: Mapping[str, Tensor]) -> None:
        """The replay buffer is filled at the first batch: take the saved size before a strict load."""
        saved = tensors.get("replay")
        if saved is not None and saved.shape != self.replay.shape:
            self.replay = torch.empty(saved.shape, dtype=self.replay.dtype, device=self.replay.device)

    def start(self, x: Tensor) -> None:
        """At the first batch ``x``: the box (points: the batch's range plus the margin) and a buffer of noise."""
        if self.data.value_range is None:
            low, high = x.amin(0), x.amax(0)
            span = (high - low).clamp_min(1e-6)
            self.generator.box.copy_(torch.stack([low - self.config.margin * span, high + self.config.margin * span]))
        self.replay = uniform((self.config.buffer_size, *self.data.event_shape), None, x.device).to(x.dtype)

    def negatives(self, m: int) -> Tensor:
        """``m`` chains from the replay buffer (a share restarted from noise), advanced and written back."""
        c = self.config
        with torch.no_grad():
            rows = torch.randperm(self.replay.shape[0], device=self.replay.device)[:m]
            u = self.replay[rows]
            fresh = round(c.reinit * u.shape[0])
            u[:fresh] = uniform((fresh, *u.shape[1:]), None, u.device)
        u = self.generator.chain(u, c.langevin_steps)
        self.replay[rows] = u
        return u

    def loss(self, player: str, batch: Batch) -> Mapping[str, Tensor]:
        x = batch[0]
        if self.replay.numel() == 0:
            with torch.no_grad():
                self.start(x)
        u_data = self.generator.to_box(x)
        if self.config.data_noise:  # dequantisation: binary or 8-bit data off the box's corners, where clamped chains stick
            u_data = reflect(u_data + self.config.data_noise * torch.randn_like(u_data))
        u_neg = self.negatives(x.shape[0])
        e = self.generator.energy(torch.cat([u_data, u_neg]))  # (B + M,)
        e_data, e_neg = e[: x.shape[0]], e[x.shape[0] :]
        loss = contrastive_loss(e_data, e_neg, self.config.alpha)
        return {"loss": loss, "e_data": e_data.mean().detach(), "e_samples": e_neg.mean().detach()}

    @classmethod
    def run_defaults(cls, data: DataInfo) -> dict[str, Any]:
        if data.kind == "image":
            return {"steps": 2000, "batch_size": 64, "lr_decay": "cosine", "sample_every": 500}
        return {"steps": 2500, "batch_size": 256, "lr_decay": "cosine"}


@igm.hookimpl
def register_models(register: Callable[[str, type], None]) -> None:
    register("ebm", EBM)
