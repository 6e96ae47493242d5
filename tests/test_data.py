"""Tests of the data sources against known answers: mixture statistics, moments, exact resume, file errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from igm.data import (
    BUILTIN_DATASETS,
    GRID25,
    RING8,
    DataInfo,
    GaussianMixture,
    ShuffledStream,
    StackedStream,
    split_spec,
)
from igm.errors import DataError

MNIST_CLASS_COUNTS = [6903, 7877, 6990, 7141, 6824, 6313, 6876, 7293, 6825, 6958]


def build(spec: str, seed: int = 0):
    name, arg = split_spec(spec)
    return BUILTIN_DATASETS[name](arg, seed)


def take(stream, n: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    return [next(stream) for _ in range(n)]


def same_batches(a, b) -> bool:
    return all(
        torch.equal(xa, xb) and (ya is None and yb is None or torch.equal(ya, yb))
        for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


# --- registry ---------------------------------------------------------------------------------


def test_builtin_names_and_spec_split() -> None:
    assert set(BUILTIN_DATASETS) == {
        "grid25", "ring8", "lognormal", "chi2", "digits", "mnist", "stacked-mnist", "npz",
        "binarized-mnist", "binarized-digits", "folder",
    }
    assert split_spec("npz:data/a.npz") == ("npz", "data/a.npz")
    assert split_spec("npz:C:/x:y.npz") == ("npz", "C:/x:y.npz")
    assert split_spec("grid25") == ("grid25", None)


def test_importing_igm_data_stays_light() -> None:
    code = (
        "import sys, igm.data\n"
        "heavy = [m for m in ('sklearn', 'torchvision', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "toolkit")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("name", ["grid25", "ring8", "lognormal", "chi2", "digits"])
def test_sources_without_argument_reject_one(name: str) -> None:
    with pytest.raises(DataError, match=f"--data {name}"):
        BUILTIN_DATASETS[name]("oops", 0)


# --- toy sources ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "mixture"), [("grid25", GRID25), ("ring8", RING8)])
def test_mixture_statistics(name: str, mixture: GaussianMixture) -> None:
    source = build(name, seed=3)
    info = source.info
    assert (info.name, info.event_shape, info.kind) == (name, (2,), "points")
    assert info.num_classes == mixture.num_modes and info.value_range is None  # labelled by component
    assert GaussianMixture.from_extra(DataInfo.from_json(info.to_json()).extra) == mixture

    x, y = source.split("train")
    assert x.shape == (100_000, 2) and x.dtype == torch.float32
    idx, dist = mixture.nearest(x)
    assert torch.equal(y, idx)  # each label is the component the point was drawn from: its nearest mean here
    unlabelled = mixture.sample(100_000, torch.Generator().manual_seed(3))
    assert torch.equal(x, unlabelled)  # the labels change no point
    assert dist.max() < 6 * mixture.std  # P(radius > 6 std) = exp(-18) per point
    residual = x - mixture.means_tensor()[idx]  # (N, 2)
    assert residual.std().item() == pytest.approx(mixture.std, rel=0.02)
    counts = torch.bincount(idx, minlength=mixture.num_modes).float()
    expected = x.shape[0] / mixture.num_modes
    assert counts.min() > 0.9 * expected and counts.max() < 1.1 * expected

    x_test, _ = source.split("test")
    assert x_test.shape == (50_000, 2)
    assert mixture.nearest(x_test)[1].max() < 6 * mixture.std


def test_mixture_definitions() -> None:
    assert GRID25.num_modes == 25 and GRID25.std == 0.05
    axis = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert set(GRID25.means) == {(a, b) for a in axis for b in axis}
    radii = RING8.means_tensor().norm(dim=1)
    assert RING8.num_modes == 8 and RING8.std == 0.01
    assert torch.allclose(radii, torch.ones(8))
    assert RING8.means[2] == pytest.approx((0.0, 1.0), abs=1e-12)


@pytest.mark.parametrize("name", ["grid25", "ring8", "lognormal", "chi2"])
def test_toy_data_depends_only_on_seed(name: str) -> None:
    a, b, c = build(name, 7), build(name, 7), build(name, 8)
    assert torch.equal(a.split("train")[0], b.split("train")[0])
    assert torch.equal(a.split("test")[0], b.split("test")[0])
    assert not torch.equal(a.split("train")[0], c.split("train")[0])
    assert not torch.equal(a.split("train")[0][:50_000], a.split("test")[0])


def test_lognormal_moments() -> None:
    source = build("lognormal", 1)
    assert (source.info.event_shape, source.info.kind) == ((1,), "points")
    assert source.info.extra == {"distribution": "lognormal"}
    x = source.split("train")[0]
    assert x.shape == (100_000, 1) and (x > 0).all()
    assert x.median().item() == pytest.approx(1.0, abs=0.02)
    assert x.mean().item() == pytest.approx(np.exp(0.5), abs=0.05)
    assert x.log().std().item() == pytest.approx(1.0, abs=0.01)


def test_chi2_moments() -> None:
    source = build("chi2", 1)
    assert source.info.extra == {"distribution": "chi2"}
    x = source.split("train")[0]
    assert x.shape == (100_000, 1) and (x >= 0).all()
    assert x.mean().item() == pytest.approx(1.0, abs=0.03)
    assert x.var().item() == pytest.approx(2.0, abs=0.1)
    assert x.median().item() == pytest.approx(0.4549, abs=0.02)  # chi2(1) median


# --- ShuffledStream ---------------------------------------------------------------------------


def _toy_tensors(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n)


def test_shuffled_epoch_visits_every_example_once() -> None:
    x, y = _toy_tensors(12)
    stream = ShuffledStream(x, y, batch_size=4, seed=0)
    epoch = torch.cat([b[1] for b in take(stream, 3)])
    assert sorted(epoch.tolist()) == list(range(12))
    second = torch.cat([b[1] for b in take(stream, 3)])
    assert sorted(second.tolist()) == list(range(12))
    assert not torch.equal(epoch, second)  # a fresh permutation per epoch
    x_batch, y_batch = next(ShuffledStream(x, y, batch_size=4, seed=0))
    assert torch.equal(x_batch[:, 0].long(), y_batch)


def test_shuffled_drops_last_partial_batch() -> None:
    x, y = _toy_tensors(10)
    stream = ShuffledStream(x, y, batch_size=3, seed=1)
    epoch = torch.cat([b[1] for b in take(stream, 3)])
    assert len(set(epoch.tolist())) == 9


@pytest.mark.parametrize("skip", [0, 2, 3, 5])  # 3 batches per epoch: resume before, at and after a boundary
def test_shuffled_resume_continues_exactly(skip: int) -> None:
    x, y = _toy_tensors(12)
    stream = ShuffledStream(x, y, batch_size=4, seed=5)
    take(stream, skip)
    state = stream.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    expected = take(stream, 7)
    resumed = ShuffledStream(x, y, batch_size=4, seed=99)
    resumed.load_state_dict({k: v.clone() for k, v in state.items()})
    assert same_batches(take(resumed, 7), expected)


def test_shuffled_ranks_get_disjoint_shards() -> None:
    x, y = _toy_tensors(20)
    shards = [
        torch.cat([b[1] for b in take(ShuffledStream(x, y, 5, seed=4, rank=r, world_size=2), 2)])
        for r in (0, 1)
    ]
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
    assert sorted(shards[0].tolist() + shards[1].tolist()) == list(range(20))


def test_shuffled_batch_larger_than_data() -> None:
    x, y = _toy_tensors(8)
    with pytest.raises(DataError, match="--batch-size"):
        ShuffledStream(x, y, batch_size=9, seed=0)


def test_toy_source_stream_yields_points() -> None:
    x, y = next(build("ring8", 0).stream(256, seed=0))
    assert x.shape == (256, 2) and y.shape == (256,) and int(y.max()) < 8


# --- StackedStream ----------------------------------------------------------------------------


def _coded_digits(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose constant pixel value i/n identifies their index i; labels i % 10."""
    x = (torch.arange(n, dtype=torch.float32) / n)[:, None, None, None].expand(n, 1, 28, 28)
    return x.contiguous(), torch.arange(n) % 10


def test_stacked_labels_match_channel_digits() -> None:
    x, y = _coded_digits()
    images, labels = next(StackedStream(x, y, batch_size=64, seed=0))
    assert images.shape == (64, 3, 28, 28) and labels.shape == (64,)
    index = (images[:, :, 0, 0] * 30).round().long()  # (64, 3): which digit each channel holds
    digits = y[index]
    assert torch.equal(labels, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2])
    assert not torch.equal(index[:, 0], index[:, 1])  # channels drawn independently


def test_stacked_resume_and_ranks() -> None:
    x, y = _coded_digits()
    stream = StackedStream(x, y, batch_size=16, seed=3)
    take(stream, 4)
    state = stream.state_dict()
    expected = take(stream, 5)
    resumed = StackedStream(x, y, batch_size=16, seed=0)
    resumed.load_state_dict(state)
    assert same_batches(take(resumed, 5), expected)

    rank0 = next(StackedStream(x, y, 16, seed=3, rank=0, world_size=2))
    rank1 = next(StackedStream(x, y, 16, seed=3, rank=1, world_size=2))
    again = next(StackedStream(x, y, 16, seed=3, rank=1, world_size=2))
    assert not torch.equal(rank0[1], rank1[1]) and torch.equal(rank1[1], again[1])


# --- npz files --------------------------------------------------------------------------------


def test_npz_vector_round_trip(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = np.arange(50) % 4
    path = tmp_path / "v.npz"
    np.savez(path, x=x, y=y)
    source = build(f"npz:{path}")
    info = source.info
    assert (info.name, info.event_shape, info.kind) == (f"npz:{path}", (3,), "vector")
    assert info.num_classes == 4 and info.value_range is None
    x_got, y_got = source.split("train")
    assert torch.equal(x_got, torch.from_numpy(x)) and y_got.dtype == torch.int64
    assert torch.equal(y_got, torch.from_numpy(y))
    assert source.split("test") is None


def test_npz_points_and_unit_floats(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    np.savez(path, x_train=np.random.default_rng(0).uniform(size=(40, 2)))
    info = build(f"npz:{path}").info
    assert (info.kind, info.event_shape, info.num_classes) == ("points", (2,), None)
    assert info.value_range == (0.0, 1.0)


def test_npz_uint8_images_with_test_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(20, 5, 6), dtype=np.uint8)
    x[0, 0, 0], x[1, 0, 0] = 0, 255
    x_test = rng.integers(0, 256, size=(7, 5, 6), dtype=np.uint8)
    path = tmp_path / "img.npz"
    np.savez(path, x_train=x, y_train=np.arange(20) % 3 * 5, x_test=x_test, y_test=np.full(7, 5))
    source = build(f"npz:{path}")
    info = source.info
    assert (info.kind, info.event_shape, info.num_classes) == ("image", (1, 5, 6), 3)  # labels 0, 5, 10
    assert info.class_values == (0, 5, 10) and not info.binary
    assert info.value_range == (0.0, 1.0)
    x_got, _ = source.split("train")
    assert x_got.shape == (20, 1, 5, 6) and x_got.dtype == torch.float32
    assert torch.allclose(x_got[:, 0], torch.from_numpy(x).float() / 255)
    assert x_got.min() == 0.0 and x_got.max() == 1.0
    xt, yt = source.split("test")
    assert xt.shape == (7, 1, 5, 6) and torch.equal(yt, torch.full((7,), 1))  # label 5 is class 1


def test_npz_channels_first_images(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, x=np.linspace(-2.0, -1.0, 4 * 3 * 8 * 8, dtype=np.float32).reshape(4, 3, 8, 8))
    info = build(f"npz:{path}").info
    assert (info.kind, info.event_shape, info.value_range) == ("image", (3, 8, 8), None)


def test_npz_errors(tmp_path: Path) -> None:
    no_x = tmp_path / "no_x.npz"
    np.savez(no_x, data=np.zeros((3, 2)))
    with pytest.raises(DataError, match="no array 'x'.*found: data"):
        build(f"npz:{no_x}")

    missing = tmp_path / "nowhere.npz"
    with pytest.raises(DataError, match="nowhere.npz does not exist"):
        build(f"npz:{missing}")

    text = tmp_path / "text.npz"
    text.write_text("hello, not numpy\n")
    with pytest.raises(DataError, match="not an .npz"):
        build(f"npz:{text}")

    bare = tmp_path / "bare.npz"
    with bare.open("wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DataError, match="single .npy array"):
        build(f"npz:{bare}")

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="pickle"):
        build(f"npz:{pickled}")

    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=np.arange(10.0).reshape(5, 2), y=np.zeros(4, dtype=np.int64))
    with pytest.raises(DataError, match=r"shape \(4,\) but there are 5 examples"):
        build(f"npz:{mismatch}")

    with pytest.raises(DataError, match="needs a path"):
        build("npz")


# --- digits -----------------------------------------------------------------------------------


def test_digits() -> None:
    pytest.importorskip("sklearn")
    source = build("digits", 0)
    info = source.info
    assert (info.event_shape, info.kind, info.num_classes) == ((1, 8, 8), "image", 10)
    assert info.value_range == (0.0, 1.0)
    x, y = source.split("train")
    xt, yt = source.split("test")
    assert x.shape == (1500, 1, 8, 8) and xt.shape == (297, 1, 8, 8)
    assert x.dtype == torch.float32 and x.min() == 0.0 and x.max() == 1.0
    assert set(y.tolist()) == set(range(10)) and set(yt.tolist()) <= set(range(10))
    other = build("digits", 12)
    assert torch.equal(other.split("train")[0], x) and torch.equal(other.split("test")[1], yt)


def test_binarized_digits_draw_fresh_bits_with_the_right_mean() -> None:
    pytest.importorskip("sklearn")
    source = build("binarized-digits", 0)
    assert source.info.extra["binarized"] == "dynamic" and source.info.event_shape == (1, 8, 8)
    intensities = source.split("train")[0]
    stream = source.stream(1500, seed=3)  # one batch is the whole (permuted) training set
    first, second = next(stream)[0], next(stream)[0]
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)  # fresh bits each pass
    # the mean of the bits is the mean intensity (1500·64 Bernoulli draws: std of the mean < 0.002)
    assert abs(float(first.mean()) - float(intensities.mean())) < 0.01
    # the test split is binarized once, identically for every run seed
    xt, yt = source.split("test")
    assert set(xt.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(build("binarized-digits", 9).split("test")[0], xt)
    assert torch.equal(yt, build("digits", 0).split("test")[1])


def test_binarized_stream_resumes_exactly() -> None:
    pytest.importorskip("sklearn")
    source = build("binarized-digits", 0)
    stream = source.stream(16, seed=1)
    for _ in range(5):
        next(stream)
    state = {k: v.clone() for k, v in stream.state_dict().items()}
    expected = [next(stream) for _ in range(3)]
    other = source.stream(16, seed=99)
    other.load_state_dict(state)
    assert all(
        torch.equal(xa, xb) and torch.equal(ya, yb)
        for (xa, ya), (xb, yb) in zip(expected, [next(other) for _ in range(3)], strict=True)
    )


def test_digits_without_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=r"pip install 'igm-toolkit\[digits\]'"):
        build("digits")


# --- MNIST ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_mnist(mnist_path: Path):
    return build(f"mnist:{mnist_path}")


def test_mnist_real_file(real_mnist) -> None:
    info = real_mnist.info
    assert (info.event_shape, info.kind, info.num_classes) == ((1, 28, 28), "image", 10)
    assert info.value_range == (0.0, 1.0)
    x, y = real_mnist.split("train")
    xt, yt = real_mnist.split("test")
    assert x.shape == (60_000, 1, 28, 28) and xt.shape == (10_000, 1, 28, 28)
    assert x.dtype == torch.float32 and x.min() == 0.0 and x.max() == 1.0
    counts = torch.bincount(torch.cat([y, yt]), minlength=10)
    assert counts.tolist() == MNIST_CLASS_COUNTS


def test_stacked_mnist_real_file(mnist_path: Path) -> None:
    source = build(f"stacked-mnist:{mnist_path}", 0)
    info = source.info
    assert (info.event_shape, info.num_classes, info.value_range) == ((3, 28, 28), 1000, (0.0, 1.0))
    assert source.split("train") is None
    x, y = next(source.stream(32, seed=0))
    assert x.shape == (32, 3, 28, 28) and int(y.max()) < 1000
    xt, yt = source.split("test")
    assert xt.shape == (10_000, 3, 28, 28) and yt.shape == (10_000,)
    assert torch.equal(build(f"stacked-mnist:{mnist_path}", 5).split("test")[1], yt)  # fixed test triples
    assert len(torch.unique(yt)) > 990  # 10,000 draws of 1000 near-uniform labels miss few


def _fake_mnist(path: Path, n_train: int = 30, n_test: int = 12, **drop: bool) -> Path:
    """A small MNIST-shaped npz; image i holds the constant value 8*i so its index can be read back."""
    arrays = {
        "x_train": (np.arange(n_train, dtype=np.uint8) * 8)[:, None, None] * np.ones((1, 28, 28), np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": np.zeros((n_test, 28, 28), np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    np.savez(path, **{k: v for k, v in arrays.items() if not drop.get(k)})
    return path


def test_mnist_from_env_and_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _fake_mnist(tmp_path / "fake.npz")
    monkeypatch.setenv("IGM_MNIST", str(path))
    from_env = build("mnist")
    assert from_env.info.name == "mnist" and from_env.split("train")[0].shape == (30, 1, 28, 28)
    assert from_env.split("train")[0][1].max().item() == pytest.approx(8 / 255)
    stacked = build("stacked-mnist", 0)
    images, labels = next(stacked.stream(50, seed=1))
    index = (images[:, :, 0, 0] * 255 / 8).round().long()  # (50, 3)
    digits = index % 10
    assert torch.equal(labels, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2])
    monkeypatch.setenv("IGM_MNIST", str(tmp_path / "elsewhere.npz"))
    assert build(f"mnist:{path}").split("test")[0].shape == (12, 1, 28, 28)  # the argument wins


def test_mnist_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    partial = _fake_mnist(tmp_path / "partial.npz", y_train=True, x_test=True)
    with pytest.raises(DataError, match="lacks arrays y_train, x_test.*x_train, y_train, x_test, y_test"):
        build(f"mnist:{partial}")

    with pytest.raises(DataError, match="missing.npz does not exist"):
        build(f"mnist:{tmp_path / 'missing.npz'}")

    monkeypatch.delenv("IGM_MNIST", raising=False)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(DataError, match="IGM_MNIST"):
        build("mnist")
    with pytest.raises(DataError, match="--data mnist:PATH/mnist.npz"):
        build("stacked-mnist")
