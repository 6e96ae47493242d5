"""Models: the trainable unit a family defines, and the contract the trainer relies on.

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
``model.generator`` is what a checkpoint's user samples from. :func:`instantiate` builds a
model from its config (checking its size first); the recipes families share sit beside this
module: :mod:`igm.adversarial`, :mod:`igm.variational`, :mod:`igm.semi_implicit`, with network
choice in :mod:`igm.nn.factory`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from igm.config import EmptyConfig
from igm.errors import ConfigError
from igm.data.base import Batch, DataInfo
from igm.generators import Generator

if TYPE_CHECKING:
    from igm.registry import Registry


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
        # foreach: the same update as torch's CPU default (the per-tensor loop), to the bit, in fewer
        # calls: a 2x256 MLP pair's Adam step 1.24 -> 0.97 ms on one thread (benchmarks/README.md)
        return torch.optim.Adam(self.parameters, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay,
                                foreach=True)




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
    def parts(cls, config: Any, registry: Registry) -> dict[str, Any]:
        """Registered components the model is built with, looked up by name in its ``config``.

        Called once where the model is planned (:func:`instantiate`: ``igm fit``, ``igm.load``,
        ``igm.testing.build_model``), before ``__init__``, which receives them as keyword
        arguments — so building a model never discovers plugins. The adversarial recipe returns
        ``{"divergence": cls}``; most families need nothing.
        """
        return {}

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
SMALL_MIXTURE = 8  # a mixture of at most this many declared components (ring8) settles in a short run


def small_mixture(data: DataInfo) -> bool:
    """Whether ``data`` declares a mixture of at most ``SMALL_MIXTURE`` components (ring8, not grid25)."""
    return 0 < len(data.extra.get("means", ())) <= SMALL_MIXTURE


def points_steps(data: DataInfo, small: int, large: int) -> int:
    """A run's default length on points: ``small`` on a :func:`small_mixture`, else ``large``."""
    return small if small_mixture(data) else large


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
    gradients, two Adam moments). The model's :meth:`Model.parts` are looked up first and
    passed to its constructor. A config the model rejects (a ``ValueError`` from its
    constructor) is a :class:`~igm.errors.ConfigError`; a too-large one is a ``DataError`` from
    :func:`igm.limits.check_allocation` (``IGM_MEMORY_LIMIT`` overrides the budget). ``name``,
    the name the class was registered under, is stamped on the model for its checkpoints.
    """
    from igm.limits import check_allocation
    from igm.registry import get_registry

    parts = model_cls.parts(config, get_registry())

    def build() -> Model:
        try:
            return model_cls(config, data, **parts)
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


