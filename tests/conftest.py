"""Shared fixtures for the core tests."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """The real MNIST file beside the project; skips when absent, but fails under CI."""
    if not SHARED_MNIST.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have real MNIST at {SHARED_MNIST}")
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return SHARED_MNIST


def write_fake_dist(site: Path, entry: str, dist: str, version: str, module: str, source: str) -> None:
    """What pip leaves behind: a module and NAME-VERSION.dist-info with METADATA and entry points."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[igm]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture(scope="session")
def fake_dist():
    """``fake_dist(site, entry, dist, version, module, source)`` writes an installed-looking plugin."""
    return write_fake_dist


@pytest.fixture(scope="session")
def small_judge(mnist_path, tmp_path_factory):
    """A quick MNIST judge (10,000 training images, 2 epochs, no shifts: ≈ 97%), cached for the session.

    Returns ``(judge, splits, cache)``: the judge, the real MNIST splits and its cache folder
    (tests point ``IGM_CACHE_DIR`` there and swap ``classifier.DEFAULT_JUDGE`` for ``judge.config``).
    """
    from igm.data.mnist import load_mnist
    from igm.metrics.judge import JudgeConfig, mnist_judge
    from igm.testing import threads

    splits = load_mnist(str(mnist_path))
    cache = tmp_path_factory.mktemp("igm-cache")
    config = JudgeConfig(epochs=2, max_train=10_000, batch_size=50, lr=3e-3, shift=0)
    with threads(1):  # a small network: one thread is faster, above all on a busy machine
        judge = mnist_judge(splits.x_train, splits.y_train, splits.x_test, splits.y_test, config, progress=False, cache=cache)
    return judge, splits, cache
