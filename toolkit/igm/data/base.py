"""Data sources: what a model trains on and how it is described.

A data source holds its training split (and, when it has one, a test split) and hands the
trainer a :class:`BatchStream`: an endless, seeded iterator of ``(x, labels or None)`` batches
whose position can be saved and restored exactly (for resume). ``DataInfo`` describes the data
so that a model can size its networks; it is stored in every checkpoint as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
from torch import Tensor

from igm.errors import DataError

Batch = tuple[Tensor, Tensor | None]
Kind = Literal["points", "vector", "image"]


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data.

    Labels inside igm are always 0..K-1. ``class_values`` keeps the user's own label of each
    (``class_values[i]`` is the label of class i: an integer from an ``.npz``, a folder name from
    ``folder:``); None means the labels are 0..K-1 themselves. ``resolved`` is the spec with its
    path made absolute, so a checkpoint finds its data again from another directory.
    """

    name: str  # the source spec the user gave, e.g. "grid25" or "npz:/data/x.npz"
    event_shape: tuple[int, ...]  # shape of one example: (2,) for points, (C, H, W) for images
    num_classes: int | None = None  # number of labels, or None when unlabelled
    value_range: tuple[float, float] | None = None  # (low, high) when bounded, e.g. (0.0, 1.0)
    kind: Kind = "vector"
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-able source facts (mixture means, ...)
    class_values: tuple[int | str, ...] | None = None  # the user's label of each class 0..K-1
    resolved: str | None = None  # the spec with an absolute path, when it names a file or folder

    @property
    def binary(self) -> bool:
        """Whether every value is 0 or 1 (stored so, or drawn so: binarized sources)."""
        return bool(self.extra.get("binarized"))

    def labels(self) -> list[int | str]:
        """The user's label of each class, in class order (0..K-1 when the data has no mapping)."""
        if self.num_classes is None:
            return []
        return list(self.class_values) if self.class_values is not None else list(range(self.num_classes))

    def class_index(self, value: int | str) -> int:
        """The class (0..K-1) of the user's label ``value``; DataError naming the labels there are."""
        labels = self.labels()
        if not labels:
            raise DataError(f"'{self.name}' is unlabelled: drop the label")
        for i, known in enumerate(labels):
            if known == value or str(known) == str(value):
                return i
        raise DataError(f"label {value!r} is not a class of '{self.name}': use one of {listing(labels)}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DataInfo:
        """Read :meth:`to_json`'s text; fields a newer igm added are dropped, missing ones default."""
        raw = json.loads(text)
        raw = {k: v for k, v in raw.items() if k in {f.name for f in fields(cls)}}
        raw["event_shape"] = tuple(raw["event_shape"])
        for key in ("value_range", "class_values"):
            if raw.get(key) is not None:
                raw[key] = tuple(raw[key])
        return cls(**raw)


def listing(values: list[Any], most: int = 12) -> str:
    """``"0, 1, 3"``: the first ``most`` values, then how many there are in all."""
    shown = ", ".join(str(v) for v in values[:most])
    return shown + (f", ... ({len(values)} in all)" if len(values) > most else "")


class BatchStream:
    """An endless iterator of batches whose position can be saved and restored exactly."""

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Tensor]:
        """Every tensor needed to continue the stream exactly where it is now."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        raise NotImplementedError

    def to_device(self, device: torch.device) -> bool:
        """Keep the data on ``device`` and draw batches there, if this stream can and the data fits.

        Returns whether batches now come out on ``device`` (otherwise the trainer copies each one).
        The stream's position and RNG state stay what they were, so resume is unchanged.
        """
        return device.type == "cpu"


def fits_on(device: torch.device, *tensors: Tensor | None) -> bool:
    """Whether ``tensors`` may live on the accelerator ``device`` (under :func:`igm.limits.device_data_budget`)."""
    from igm.limits import device_data_budget

    size = sum(t.numel() * t.element_size() for t in tensors if t is not None)
    return size <= device_data_budget(device)


class ShuffledStream(BatchStream):
    """Batches from in-memory tensors: a fresh seeded permutation per epoch, last partial batch dropped.

    With ``world_size > 1`` every rank draws the same permutation and takes its own interleaved
    shard of it (DistributedSampler semantics), so ranks never see the same example in an epoch.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor | None,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        per_rank = x.shape[0] // world_size
        if batch_size > per_rank:
            raise DataError(
                f"batch size {batch_size} is larger than the {per_rank} training examples"
                f"{' per rank' if world_size > 1 else ''}: use a smaller --batch-size"
            )
        self.x, self.y = x, y
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.rng = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.pos = 0
        self.order = self._new_order()  # on the CPU, drawn by self.rng: the saved position
        self._order_on = self.order  # the same indices where the data lives

    def to_device(self, device: torch.device) -> bool:
        if device.type != "cpu" and not fits_on(device, self.x, self.y):
            return False
        self.x = self.x.to(device)
        self.y = None if self.y is None else self.y.to(device)
        self._order_on = self.order.to(device)
        return True

    def _new_order(self) -> Tensor:
        perm = torch.randperm(self.x.shape[0], generator=self.rng)
        usable = (perm.shape[0] // self.world_size) * self.world_size
        return perm[:usable][self.rank :: self.world_size]

    def __next__(self) -> Batch:
        if self.pos + self.batch_size > self.order.shape[0]:
            self.order, self.pos, self.epoch = self._new_order(), 0, self.epoch + 1
            self._order_on = self.order.to(self.x.device)  # one copy per epoch, none per batch
        idx = self._order_on[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.x.index_select(0, idx), (None if self.y is None else self.y.index_select(0, idx))

    def state_dict(self) -> dict[str, Tensor]:
        return {
            "rng": self.rng.get_state(),
            "order": self.order.contiguous(),  # never changed in place (each epoch makes a new one): no copy
            "position": torch.tensor([self.epoch, self.pos], dtype=torch.int64),
        }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.rng.set_state(state["rng"])
        self.order = state["order"].clone()
        self._order_on = self.order.to(self.x.device)
        self.epoch, self.pos = (int(v) for v in state["position"])


class DataSource:
    """A named source of training data (and optionally a test split).

    Subclasses set ``info`` and implement :meth:`stream`. Sources that hold their examples in
    memory subclass :class:`TensorSource` and only build the tensors.
    """

    info: DataInfo

    def stream(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> BatchStream:
        """An endless seeded stream of training batches for one rank."""
        raise NotImplementedError

    def split(self, name: Literal["train", "test"] = "train") -> Batch | None:
        """The whole split as ``(x, labels or None)`` on the CPU, or None if the source has none."""
        return None


class TensorSource(DataSource):
    """A data source whose splits are tensors in memory."""

    def __init__(
        self,
        info: DataInfo,
        x_train: Tensor,
        y_train: Tensor | None = None,
        x_test: Tensor | None = None,
        y_test: Tensor | None = None,
    ) -> None:
        self.info = info
        self._splits: dict[str, Batch] = {"train": (x_train, y_train)}
        if x_test is not None:
            self._splits["test"] = (x_test, y_test)

    def stream(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> BatchStream:
        x, y = self._splits["train"]
        return ShuffledStream(x, y, batch_size, seed, rank, world_size)

    def split(self, name: Literal["train", "test"] = "train") -> Batch | None:
        return self._splits.get(name)


def spec_name(key: str, arg: str | None) -> str:
    """The full source spec a user writes: ``"grid25"`` or ``"npz:/data/x.npz"``."""
    return key if arg is None else f"{key}:{arg}"


def reject_argument(key: str, arg: str | None) -> None:
    """Raise :class:`DataError` when a source that takes no argument was given one."""
    if arg is not None:
        raise DataError(f"the '{key}' data source takes no argument (got '{key}:{arg}'): use --data {key}")


def describe(source: DataSource) -> str:
    """One line saying what was read: examples, shape, dtype, value range, binary or not, classes.

    ``igm fit`` and ``igm eval`` print it, e.g. ``read npz:x.npz: 950 train + 50 test examples,
    image (1, 8, 8), uint8 0/1 kept (binary), values 0..1, 8 classes: 0, 1, 3, 4, 5, 7, 8, 9``.
    """
    info = source.info
    train, test = source.split("train"), source.split("test")
    counts = "a procedural training stream" if train is None else f"{train[0].shape[0]:,} train"
    if test is not None:
        counts += f" + {test[0].shape[0]:,} test"
    shape = ", ".join(str(d) for d in info.event_shape)
    parts = [f"read {info.name}: {counts} examples", f"{info.kind} ({shape})"]
    dtype = info.extra.get("dtype") or (str(train[0].dtype).removeprefix("torch.") if train is not None else "float32")
    if info.extra.get("binarized") == "dynamic":
        parts.append(f"{dtype} intensities, binary (fresh Bernoulli bits per batch)")
    elif info.binary:
        parts.append(f"{dtype} 0/1 kept (binary)")
    elif dtype == "uint8":
        parts.append("uint8 scaled by 1/255 to [0, 1]")
    else:
        parts.append(f"{dtype} kept as is")
    x = train[0] if train is not None else (test[0] if test is not None else None)
    if x is not None and x.numel():
        parts.append(f"values {float(x.min()):.4g}..{float(x.max()):.4g}")
    if info.num_classes is None:
        parts.append("unlabelled")
    else:
        parts.append(f"{info.num_classes} classes: {listing(info.labels())}")
    return ", ".join(parts)
