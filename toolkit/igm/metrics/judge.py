"""The judge: a small CNN classifier that igm trains itself on the data, for classifier-based metrics.

No metric downloads weights. The judge is trained from the data's own labelled training split
(any image size of at least 4×4 pixels, any number of channels and classes), deterministically
from a seed, and cached as safetensors under the cache directory (``IGM_CACHE_DIR``, else
``$XDG_CACHE_HOME/igm``, else ``~/.cache/igm``; ``~/Library/Caches/igm`` on macOS,
``%LOCALAPPDATA%\\igm`` on Windows) in ``judges/mnist-judge-<key>.safetensors`` (MNIST's shape
and 10 classes) or ``judges/judge-<key>.safetensors`` (any other data). The key
hashes the training images and labels (their bytes) and the judge's config, so a second call
loads in a moment and a changed dataset or config never reuses a stale judge. A cache file that
cannot be read, or whose metadata does not match, is rebuilt, never trusted::

    judge = image_judge(x_train, y_train, x_test, y_test)  # (N, C, H, W) in [0, 1], labels 0..K-1 (N,)
    judge.test_accuracy          # on the test split, measured once when trained (≥ 0.99 on MNIST)
    p = judge.probs(x)           # (N, K) class probabilities
    f = judge.features(x)        # (N, 128) penultimate features, for Fréchet distances

Network: conv 3×3 (w = 16) → BatchNorm → ReLU → max-pool → conv 3×3 (2w) → BatchNorm → ReLU →
max-pool (adaptive, to at most 7×7) → FC 128 → ReLU → FC K, trained with Adam (2e-3, cosine
decay to 0) for 4 epochs of batch 64 (optionally with random shifts). On MNIST: 99.1% test
accuracy, about 75 CPU-seconds. ``mnist_judge`` is ``image_judge`` for (N, 1, 28, 28) digits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import Tensor, nn

from igm import checkpoint
from igm.data.cache import cache_dir
from igm.errors import CheckpointError, DataError
from igm.progress import ProgressBar

JUDGE_FORMAT = "1"
FEATURES = 128


@dataclass(frozen=True)
class JudgeConfig:
    """How the judge is trained; every field enters the cache key."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 16  # channels of the first conv (the second has 2·width)
    seed: int = 0
    max_train: int = 0  # train on the first max_train images only (tests); 0: all
    shift: int = 0  # random translations of up to ±shift pixels while training; 0: none

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "width"):
            if getattr(self, key) < 1:
                raise ValueError(f"judge {key} must be positive, got {getattr(self, key)}")
        if self.max_train < 0 or self.shift < 0:
            raise ValueError("judge max_train and shift must be >= 0")


def data_hash(x: Tensor, y: Tensor) -> str:
    """sha256 of the images' and labels' bytes (dtype and shape included)."""
    h = hashlib.sha256()
    for t in (x, y):
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def judge_key(train_hash: str, config: JudgeConfig) -> str:
    """The cache key: the training data's hash and the config (as sorted JSON)."""
    text = json.dumps({"format": JUDGE_FORMAT, "data": train_hash, "config": dataclasses.asdict(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


MIN_SIDE = 4  # two 2x poolings
MNIST_SHAPE = (1, 28, 28)


def judge_problem(shape: tuple[int, ...]) -> str | None:
    """Why the judge cannot classify examples of ``shape``, or None when it can: (C, H, W), H, W >= 4."""
    if len(shape) != 3:
        return f"the judge classifies images (C, H, W); these examples have shape {tuple(shape)}"
    if min(shape[1:]) < MIN_SIDE:
        return f"the judge classifies images of at least {MIN_SIDE}x{MIN_SIDE} pixels; these are {shape[1]}x{shape[2]}"
    return None


class JudgeNet(nn.Module):
    """(N, C, H, W) in [0, 1] -> penultimate features (N, 128) -> logits (N, K); MNIST: (N, 1, 28, 28)."""

    def __init__(self, width: int = 32, num_classes: int = 10, shape: tuple[int, int, int] = MNIST_SHAPE) -> None:
        super().__init__()
        c, h, w = shape
        out_h, out_w = min(h // 4, 7), min(w // 4, 7)
        second_pool = nn.MaxPool2d(2) if (out_h, out_w) == (h // 4, w // 4) else nn.AdaptiveMaxPool2d((out_h, out_w))
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1, bias=False),  # (N, w, H, W)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, w, H/2, W/2)
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),  # (N, 2w, H/2, W/2)
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            second_pool,  # (N, 2w, h', w'), at most 7x7
            Rearrange("n c h w -> n (c h w)"),  # (N, 2w·h'·w')
            nn.Linear(2 * width * out_h * out_w, FEATURES),  # (N, 128)
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)  # (N, K)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class Judge(nn.Module):
    """A trained judge: batched, gradient-free ``logits``, ``probs`` and ``features``."""

    def __init__(
        self,
        config: JudgeConfig,
        key: str = "",
        test_accuracy: float = float("nan"),
        num_classes: int = 10,
        shape: tuple[int, int, int] = MNIST_SHAPE,
    ) -> None:
        super().__init__()
        self.config, self.key, self.test_accuracy = config, key, test_accuracy
        self.num_classes, self.shape = num_classes, tuple(shape)
        self.net = JudgeNet(config.width, num_classes, shape)
        self.path: Path | None = None
        self.trained = False  # True when this call trained it (False: loaded from the cache)
        self.test_hash = ""  # data_hash of the test split test_accuracy was measured on ("": unknown)
        self.eval()

    def _batched(self, x: Tensor, fn: str, batch: int = 2000) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            want = ", ".join(str(d) for d in self.shape)
            raise ValueError(f"this judge scores images of shape (N, {want}), got {tuple(x.shape)}")
        out = []
        with torch.no_grad():
            for chunk in x.split(batch):
                chunk = chunk.to(torch.float32)
                out.append(self.net.body(chunk) if fn == "features" else self.net(chunk))
        return torch.cat(out) if out else torch.empty(0, FEATURES if fn == "features" else self.num_classes)

    def logits(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, K)."""
        return self._batched(x, "logits")

    def probs(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> class probabilities (N, K)."""
        return self.logits(x).softmax(dim=1)

    def features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> penultimate features (N, 128)."""
        return self._batched(x, "features")

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        return float((self.logits(x).argmax(dim=1) == y).double().mean())


def _shifted(x: Tensor, shift: int, gen: torch.Generator) -> Tensor:
    """Each image translated by a random (dy, dx) in [-shift, shift]² with zero fill."""
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))  # (N, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=gen)
    rows = dy[:, None] + torch.arange(h)  # (N, H)
    cols = dx[:, None] + torch.arange(w)  # (N, W)
    idx = torch.arange(n)[:, None, None]
    moved = rearrange(padded, "n c h w -> n h w c")[idx, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return rearrange(moved, "n h w c -> n c h w")


def train_judge(
    x: Tensor,
    y: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    config: JudgeConfig,
    progress: bool = True,
    num_classes: int = 10,
    description: str = "train judge",
) -> Judge:
    """Train a judge from scratch, deterministically from ``config.seed``; measures its test accuracy."""
    if config.max_train:
        x, y = x[: config.max_train], y[: config.max_train]
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    judge = Judge(config, num_classes=num_classes, shape=tuple(x.shape[1:]))
    net = judge.net.train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    per_epoch = math.ceil(x.shape[0] / config.batch_size)
    total = per_epoch * config.epochs
    step = 0
    with ProgressBar(total, description=description, enabled=progress) as bar:
        for _ in range(config.epochs):
            order = torch.randperm(x.shape[0], generator=gen)
            for idx in order.split(config.batch_size):
                for group in opt.param_groups:  # cosine decay to 0 over the run
                    group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
                xb = _shifted(x[idx].to(torch.float32), config.shift, gen)
                loss = F.cross_entropy(net(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(step, {"loss": loss.item()})
    judge.eval()
    judge.test_accuracy = judge.accuracy(x_test, y_test)
    judge.trained = True
    return judge


def _read_cached(path: Path, key: str, config: JudgeConfig) -> Judge | None:
    """The cached judge at ``path``, or None when it is missing, unreadable or not the one asked for."""
    if not path.is_file():
        return None
    try:
        tensors, meta = checkpoint.read_file(path)
        if meta.get("igm.judge.key") != key or meta.get("igm.judge.format") != JUDGE_FORMAT:
            raise CheckpointError("metadata does not match")
        shape = tuple(json.loads(meta.get("igm.judge.shape", "[1, 28, 28]")))
        classes = int(meta.get("igm.judge.classes", "10"))
        judge = Judge(config, key, float(meta["igm.judge.test_accuracy"]), classes, shape)
        judge.net.load_state_dict(tensors, strict=True)
        judge.test_hash = meta.get("igm.judge.test_hash", "")  # files before it: measured again
    except (CheckpointError, RuntimeError, KeyError, ValueError) as exc:
        print(f"igm: the cached judge {path} is unusable ({exc}); training it again", file=sys.stderr)
        return None
    judge.path = path
    return judge


def image_judge(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    config: JudgeConfig | None = None,
    progress: bool = True,
    cache: Path | None = None,
    name: str = "",
) -> Judge:
    """The judge of these images (N, C, H, W) and labels 0..K-1: from the cache, or trained and cached.

    K is ``max(y_train) + 1``; ``name`` (the data's) shows on the progress bar.
    """
    config = config or JudgeConfig()
    shape = tuple(x_train.shape[1:])
    problem = judge_problem(shape)
    if problem is None and tuple(x_test.shape[1:]) != shape:
        problem = f"the judge's test images have shape {tuple(x_test.shape[1:])}, its training images {shape}"
    if problem is not None:
        raise DataError(f"{problem}: use image data")
    num_classes = int(y_train.max()) + 1
    train_hash = data_hash(x_train, y_train)
    key = judge_key(train_hash, config)
    prefix = "mnist-judge" if (shape, num_classes) == (MNIST_SHAPE, 10) else "judge"
    path = (cache or cache_dir()) / "judges" / f"{prefix}-{key}.safetensors"
    test_hash = data_hash(x_test, y_test)
    judge = _read_cached(path, key, config)
    if judge is not None:
        # the key is the training data's: a source with the same training images but another test
        # split (binarized-mnist's fixed bits beside mnist's grey digits) gets its own accuracy
        if judge.test_hash != test_hash:
            judge.test_accuracy = judge.accuracy(x_test, y_test)
        return judge
    what = f"train judge on {name}" if name else "train judge"
    judge = train_judge(x_train, y_train, x_test, y_test, config, progress, num_classes, what)
    judge.key, judge.test_hash = key, test_hash
    meta = {
        "igm.judge.format": JUDGE_FORMAT,
        "igm.judge.key": key,
        "igm.judge.config": json.dumps(dataclasses.asdict(config), sort_keys=True),
        "igm.judge.data_hash": train_hash,
        "igm.judge.test_hash": test_hash,  # the split test_accuracy was measured on
        "igm.judge.test_accuracy": repr(judge.test_accuracy),
        "igm.judge.shape": json.dumps(list(shape)),
        "igm.judge.classes": str(num_classes),
    }
    try:
        judge.path = checkpoint.save_tensors(path, judge.net.state_dict(), meta)
    except OSError as exc:  # a read-only cache still gives a usable judge
        print(f"igm: could not cache the judge at {path} ({exc}); set IGM_CACHE_DIR to a writable folder", file=sys.stderr)
    return judge


def mnist_judge(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    config: JudgeConfig | None = None,
    progress: bool = True,
    cache: Path | None = None,
) -> Judge:
    """The judge of MNIST digits (N, 1, 28, 28) in 10 classes: :func:`image_judge` with a check."""
    if tuple(x_train.shape[1:]) != MNIST_SHAPE or tuple(x_test.shape[1:]) != MNIST_SHAPE:
        raise DataError(
            f"the MNIST judge trains on images of shape (N, 1, 28, 28), got {tuple(x_train.shape)}: use MNIST data"
        )
    return image_judge(x_train, y_train, x_test, y_test, config, progress, cache, "mnist")
