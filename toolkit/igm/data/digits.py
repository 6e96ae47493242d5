"""The ``digits`` data source: scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download).

Pixel values 0..16 are scaled to [0, 1] float32, images are (1, 8, 8), labels are the 10 digit
classes. The train/test split is a fixed seeded permutation, the same for every run seed:
the first 1,500 examples train, the remaining 297 test. scikit-learn is optional and is only
imported when the source is built.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from igm.data.base import DataInfo, TensorSource, reject_argument, spec_name
from igm.errors import DataError

NUM_TRAIN = 1500
SPLIT_SEED = 0  # fixed: the split never depends on the run's seed
MAX_VALUE = 16.0  # pixel intensities in load_digits run 0..16


def load_digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The raw images (1797, 8, 8) and labels (1797,) from scikit-learn; DataError if it is missing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the 'digits' data source needs scikit-learn: pip install 'igm-toolkit[digits]'"
        ) from None
    bunch = load_digits()
    return bunch.images, bunch.target


def split_permutation(n: int) -> Tensor:
    """The fixed permutation (n,) that orders examples into train (first 1500) and test (rest)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))


def digits(arg: str | None, seed: int) -> TensorSource:
    """scikit-learn's 8×8 handwritten digits in [0, 1], 10 classes (fixed train/test split)."""
    del seed
    reject_argument("digits", arg)
    images, target = load_digit_arrays()
    x = torch.from_numpy(images.astype(np.float32) / MAX_VALUE)  # (1797, 8, 8) in [0, 1]
    x = rearrange(x, "n h w -> n 1 h w")  # (1797, 1, 8, 8)
    y = torch.from_numpy(target.astype(np.int64))  # (1797,)
    order = split_permutation(x.shape[0])
    train, test = order[:NUM_TRAIN], order[NUM_TRAIN:]
    info = DataInfo(
        spec_name("digits", arg), (1, 8, 8), num_classes=10, value_range=(0.0, 1.0), kind="image"
    )
    return TensorSource(info, x[train], y[train], x[test], y[test])
