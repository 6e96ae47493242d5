"""The ``mnist`` and ``stacked-mnist`` data sources.

MNIST comes from an ``.npz`` holding ``x_train, y_train, x_test, y_test`` (uint8 images 0-255,
28×28) found at, in order: the source argument (``mnist:PATH``), the ``IGM_MNIST`` environment
variable, or torchvision's MNIST (already downloaded, under ``IGM_DATA_DIR`` or
``~/.cache/igm/data``) when torchvision imports. Nothing is ever downloaded.

Stacked MNIST (Metz et al.) stacks three independently drawn MNIST training digits as the
channels of one (3, 28, 28) image with label 100·a + 10·b + c, so it has 1000 modes. Its training
stream is procedural and endless (:class:`StackedStream`); its test split is a fixed 10,000
triples of test digits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from igm.data.base import Batch, BatchStream, DataInfo, DataSource, TensorSource, fits_on, spec_name
from igm.data.files import read_npz, require_arrays
from igm.errors import DataError

ARRAYS = ["x_train", "y_train", "x_test", "y_test"]
SIDE = 28
NUM_STACKED_TEST = 10_000
STACKED_TEST_SEED = 2024  # fixed: the stacked test triples never depend on the run's seed
NOT_FOUND = (
    "MNIST not found: point igm at a copy with --data mnist:PATH/mnist.npz or the IGM_MNIST "
    "environment variable (an .npz with x_train, y_train, x_test, y_test)"
)


@dataclass(frozen=True)
class MnistSplits:
    """MNIST as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    origin: str  # the .npz path or "torchvision:ROOT"


def _images(x: np.ndarray, where: str, name: str) -> Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE) or x.dtype != np.uint8:
        raise DataError(
            f"'{name}' in {where} is {x.dtype} of shape {x.shape}: MNIST images must be uint8 (N, 28, 28)"
        )
    if x.shape[0] == 0:
        raise DataError(f"'{name}' in {where} holds no images: MNIST needs at least one image per split")
    x = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(255.0)  # (N, 28, 28)
    return rearrange(x, "n h w -> n 1 h w")


def _labels(y: np.ndarray, n: int, where: str, name: str) -> Tensor:
    """Integer labels (N,) in 0..9 -> int64 (N,)."""
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"'{name}' in {where} is {y.dtype} of shape {y.shape}: MNIST labels must be {n} integers"
        )
    if n and (int(y.min()) < 0 or int(y.max()) > 9):
        raise DataError(f"'{name}' in {where} has labels outside 0..9: MNIST labels are the digits 0-9")
    return torch.from_numpy(y.astype(np.int64))


def splits_from_arrays(arrays: dict[str, np.ndarray], where: str) -> MnistSplits:
    """Check and convert the four MNIST arrays; DataError naming what is wrong."""
    require_arrays(arrays, ARRAYS, where)
    x_train = _images(arrays["x_train"], where, "x_train")
    x_test = _images(arrays["x_test"], where, "x_test")
    y_train = _labels(arrays["y_train"], x_train.shape[0], where, "y_train")
    y_test = _labels(arrays["y_test"], x_test.shape[0], where, "y_test")
    return MnistSplits(x_train, y_train, x_test, y_test, where)


def _torchvision_arrays() -> tuple[dict[str, np.ndarray], str] | None:
    """MNIST from torchvision's local copy, or None when torchvision or its copy is unavailable."""
    root = os.environ.get("IGM_DATA_DIR") or str(Path.home() / ".cache" / "igm" / "data")
    try:  # any failure (no torchvision, a broken install, no local copy) means "not available"
        from torchvision.datasets import MNIST

        train = MNIST(root, train=True, download=False)
        test = MNIST(root, train=False, download=False)
        arrays = {
            "x_train": np.asarray(train.data),
            "y_train": np.asarray(train.targets),
            "x_test": np.asarray(test.data),
            "y_test": np.asarray(test.targets),
        }
    except Exception:
        return None
    return arrays, f"torchvision:{root}"


def load_mnist(path: str | None = None) -> MnistSplits:
    """MNIST from ``path``, else ``$IGM_MNIST``, else torchvision's local copy; DataError if none."""
    path = path or os.environ.get("IGM_MNIST") or None
    if path is not None:
        return splits_from_arrays(read_npz(path, "mnist"), str(Path(path).expanduser()))
    found = _torchvision_arrays()
    if found is None:
        raise DataError(NOT_FOUND)
    return splits_from_arrays(*found)


def mnist(arg: str | None, seed: int) -> TensorSource:
    """MNIST from an .npz ([:PATH], $IGM_MNIST or torchvision): (1, 28, 28) in [0, 1], 10 classes."""
    del seed
    data = load_mnist(arg)
    info = DataInfo(
        spec_name("mnist", arg),
        (1, SIDE, SIDE),
        num_classes=10,
        value_range=(0.0, 1.0),
        kind="image",
        extra={"origin": data.origin},
    )
    return TensorSource(info, data.x_train, data.y_train, data.x_test, data.y_test)


def stack_digits(x: Tensor, y: Tensor, idx: Tensor) -> Batch:
    """Stack digits ``idx`` (3, B) of ``x`` (N, 1, 28, 28) into images (B, 3, 28, 28), labels (B,)."""
    images = rearrange(x[idx], "k b 1 h w -> b k h w").contiguous()  # (B, 3, 28, 28)
    a, b, c = y[idx]  # each (B,)
    return images, 100 * a + 10 * b + c


def stream_seed(seed: int, rank: int, world_size: int) -> int:
    """The generator seed of one rank's stacked stream: distinct for every rank of a run."""
    return seed * world_size + rank


class StackedStream(BatchStream):
    """Endless batches of stacked digits, three uniform index vectors per batch from a seeded generator."""

    def __init__(
        self, x: Tensor, y: Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if batch_size < 1:
            raise DataError(f"batch size {batch_size} must be at least 1: use a positive --batch-size")
        self.x, self.y = x, y  # (N, 1, 28, 28), (N,)
        self.batch_size = batch_size
        self.rng = torch.Generator().manual_seed(stream_seed(seed, rank, world_size))

    def __next__(self) -> Batch:
        idx = torch.randint(self.x.shape[0], (3, self.batch_size), generator=self.rng)  # (3, B), drawn on the CPU
        return stack_digits(self.x, self.y, idx.to(self.x.device, non_blocking=True))

    def to_device(self, device: torch.device) -> bool:
        """The digits live on ``device`` and are stacked there; only the indices (3 x B) travel per batch."""
        if device.type != "cpu" and not fits_on(device, self.x, self.y):
            return False
        self.x, self.y = self.x.to(device), self.y.to(device)
        return True

    def state_dict(self) -> dict[str, Tensor]:
        return {"rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.rng.set_state(state["rng"])


class StackedMnistSource(DataSource):
    """Stacked MNIST: a procedural training stream and a fixed test split of 10,000 triples.

    ``split("train")`` is None (the training set is the endless stream); the underlying MNIST
    digits stay available as ``self.mnist`` for metrics such as mode counting.
    """

    def __init__(self, name: str, data: MnistSplits) -> None:
        self.mnist = data
        self.info = DataInfo(
            name,
            (3, SIDE, SIDE),
            num_classes=1000,
            value_range=(0.0, 1.0),
            kind="image",
            extra={"origin": data.origin},
        )
        self._test: Batch | None = None

    def stream(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> BatchStream:
        return StackedStream(self.mnist.x_train, self.mnist.y_train, batch_size, seed, rank, world_size)

    def split(self, name: Literal["train", "test"] = "train") -> Batch | None:
        if name != "test":
            return None
        if self._test is None:  # built on first use: 10,000 × 3 × 28 × 28 floats
            rng = torch.Generator().manual_seed(STACKED_TEST_SEED)
            n = self.mnist.x_test.shape[0]
            idx = torch.randint(n, (3, NUM_STACKED_TEST), generator=rng)  # (3, 10000)
            self._test = stack_digits(self.mnist.x_test, self.mnist.y_test, idx)
        return self._test


def stacked_mnist(arg: str | None, seed: int) -> StackedMnistSource:
    """Three independent MNIST digits as RGB channels (3, 28, 28), 1,000 classes ([:PATH] as mnist)."""
    del seed
    return StackedMnistSource(spec_name("stacked-mnist", arg), load_mnist(arg))
