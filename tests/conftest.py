"""Shared fixtures for the core tests."""

from __future__ import annotations

import os
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
