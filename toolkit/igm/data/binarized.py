"""Dynamically binarized image sources: ``binarized-mnist[:PATH]`` and ``binarized-digits``.

Each pixel intensity p in [0, 1] is read as the probability of a 1: every training batch draws
fresh bits x ~ Bernoulli(p) (dynamic binarization, as in the IWAE paper), so a model never
sees the same binary image twice. The test split is binarized once, with a fixed seed that does
not depend on the run's seed, so every run and every metric scores the same binary test set.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from igm.data.base import Batch, BatchStream, DataInfo, DataSource, TensorSource, spec_name
from igm.data.digits import digits
from igm.data.mnist import mnist

TEST_SEED = 4321  # fixed: the binary test images never depend on the run's seed
BITS_OFFSET = 7_919  # the bit generator of rank r draws from seed (seed + 1) * 7_919 + r


def binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Bits drawn with probability ``x`` (any shape, values in [0, 1]), same dtype as ``x``."""
    return torch.bernoulli(x, generator=generator)


class BinarizedStream(BatchStream):
    """Wraps a stream of intensities and draws fresh Bernoulli bits for every batch."""

    def __init__(self, inner: BatchStream, seed: int, rank: int = 0) -> None:
        self.inner = inner
        self.rng = torch.Generator().manual_seed((seed + 1) * BITS_OFFSET + rank)

    def to_device(self, device: torch.device) -> bool:
        """With the intensities on ``device``, the bits are drawn there too, by a generator of that device."""
        if device.type == "cpu" or not self.inner.to_device(device):
            return device.type == "cpu"
        state = self.rng.initial_seed()
        self.rng = torch.Generator(device=device).manual_seed(state)
        return True

    def __next__(self) -> Batch:
        x, y = next(self.inner)
        return binarize(x, self.rng), y

    def state_dict(self) -> dict[str, Tensor]:
        return {**self.inner.state_dict(), "bits_rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        inner = {k: v for k, v in state.items() if k != "bits_rng"}
        self.inner.load_state_dict(inner)
        self.rng.set_state(state["bits_rng"])


class BinarizedSource(DataSource):
    """A source of intensities in [0, 1] seen as dynamically binarized images."""

    def __init__(self, name: str, base: TensorSource) -> None:
        self.base = base
        extra = {**base.info.extra, "binarized": "dynamic"}
        self.info = DataInfo(
            name, base.info.event_shape, base.info.num_classes, (0.0, 1.0), base.info.kind, extra
        )
        self._test: Batch | None = None

    def stream(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> BatchStream:
        return BinarizedStream(self.base.stream(batch_size, seed, rank, world_size), seed, rank)

    def split(self, name: Literal["train", "test"] = "train") -> Batch | None:
        if name == "train":  # the intensities: every pass over them should draw new bits
            return self.base.split("train")
        if self._test is None:
            test = self.base.split("test")
            if test is None:
                return None
            x, y = test
            self._test = binarize(x, torch.Generator().manual_seed(TEST_SEED)), y
        return self._test


def binarized_mnist(arg: str | None, seed: int) -> BinarizedSource:
    """MNIST ([:PATH] as mnist) with fresh Bernoulli bits per batch; a fixed binary test split."""
    return BinarizedSource(spec_name("binarized-mnist", arg), mnist(arg, seed))


def binarized_digits(arg: str | None, seed: int) -> BinarizedSource:
    """scikit-learn's 8×8 digits with fresh Bernoulli bits per batch; a fixed binary test split."""
    return BinarizedSource(spec_name("binarized-digits", arg), digits(arg, seed))
