"""The contract every model family passes, for use in a plugin's own tests.

::

    from igm.testing import check_model, toy_images, toy_points

    def test_contract(tmp_path):
        check_model("my-model", toy_points(), tmp_path, overrides={"lr_g": "0.002"})

:func:`check_model` builds the model from its default config on small data, trains a few
steps (every loss finite, every player's parameters move), checks samples (shape, finite,
inside the data's value range), round-trips a checkpoint bit-exactly through ``igm.load``
and checks that config overrides reach the model, change what it trains, and that an unknown
key is refused. The model trained and saved is the one built with the overrides. Each check is
also a function of its own (:func:`check_trains`, :func:`check_samples`,
:func:`check_checkpoint_roundtrip`, :func:`check_overrides`). :func:`plugin` registers an
inline plugin for the duration of a ``with`` block.

This module is also a pytest plugin (entry point ``pytest11`` ``igm``), loaded in any test run
where igm is installed: the fixtures ``one_thread`` (``@pytest.mark.usefixtures("one_thread")``
or ``pytestmark``), ``points``, ``images`` and ``inline_plugin``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from igm import checkpoint
from igm import config as cfg
from igm.data.base import DataInfo, DataSource, TensorSource
from igm.errors import ConfigError
from igm.models import Model
from igm.registry import add_plugin, get_registry, remove_plugin
from igm.trainer import METRICS_FILE, RunConfig, Trainer


def toy_points(n: int = 512, seed: int = 0) -> TensorSource:
    """A small 2-D mixture of 4 Gaussians (labelled by component) for fast tests."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.tensor([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])
    labels = torch.randint(4, (n,), generator=gen)
    x = means[labels] + 0.1 * torch.randn(n, 2, generator=gen)
    info = DataInfo("toy-points", (2,), 4, None, "points", {"means": means.tolist(), "std": 0.1})
    return TensorSource(info, x, labels, x[: n // 4], labels[: n // 4])


def toy_images(n: int = 64, shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0) -> TensorSource:
    """Small labelled images in [0, 1]: class k lights up row k mod H (10 classes)."""
    gen = torch.Generator().manual_seed(seed)
    c, h, w = shape
    labels = torch.randint(10, (n,), generator=gen)
    x = 0.1 * torch.rand(n, c, h, w, generator=gen)
    x[torch.arange(n), :, labels % h, :] = 0.9
    info = DataInfo("toy-images", shape, 10, (0.0, 1.0), "image")
    return TensorSource(info, x, labels, x[: n // 4], labels[: n // 4])


def build_model(name: str, data: DataInfo, overrides: dict[str, Any] | None = None, seed: int = 0) -> Model:
    """Build a registered model from its default config (plus overrides) for ``data``."""
    from igm.models import instantiate

    cls = get_registry().get("models", name)
    torch.manual_seed(seed)
    return instantiate(cls, cfg.build(cls.Config, overrides or {}, what=f"'{name}' config"), data, name)


def check_trains(model: Model, data: DataSource, out_dir: Path, steps: int = 3, batch_size: int = 16) -> Trainer:
    """A few steps with the default trainer: finite logged losses, every player's parameters move."""
    before = {p.name: [q.detach().clone() for q in p.parameters] for p in model.players()}
    run = RunConfig(steps=steps, batch_size=batch_size, log_every=1, sample_every=0, checkpoint_every=0, device="cpu")
    trainer = Trainer(model, data, run, out_dir, progress=False)
    trainer.fit()
    logs = [json.loads(line) for line in (out_dir / METRICS_FILE).read_text().splitlines()]
    assert len(logs) == steps, f"expected {steps} log lines, got {len(logs)}"
    for entry in logs:
        for player in before:
            assert math.isfinite(entry[player]), f"{player} loss not finite: {entry}"
    for player in model.players():
        moved = any(not torch.equal(a, b) for a, b in zip(before[player.name], player.parameters))
        assert moved or not player.parameters, f"player '{player.name}' did not update its parameters"
    assert (out_dir / checkpoint.MODEL_FILE).exists() and (out_dir / "samples.png").exists()
    return trainer


def check_samples(model: Model, n: int = 16) -> torch.Tensor:
    """Samples have shape (n, *event_shape), are finite and lie in the data's value range."""
    model.eval()
    with torch.no_grad():
        x = model.generator.sample(n, generator=torch.Generator().manual_seed(0))
    assert tuple(x.shape) == (n, *model.data.event_shape), f"sample shape {tuple(x.shape)}"
    assert torch.isfinite(x).all(), "samples are not finite"
    if model.data.value_range is not None:
        low, high = model.data.value_range
        assert x.min() >= low and x.max() <= high, f"samples leave the value range {model.data.value_range}"
    return x


def check_checkpoint_roundtrip(model: Model, path: Path) -> Model:
    """Save, ``igm.load`` and compare: every tensor bit-exact, same config, same seeded samples."""
    checkpoint.save(model, path, step=7)
    loaded = checkpoint.load(path)
    assert type(loaded) is type(model)
    assert cfg.to_dict(loaded.config) == cfg.to_dict(model.config)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key, tensor in original.items():
        assert restored[key].dtype == tensor.dtype and torch.equal(restored[key], tensor.cpu()), f"{key} differs"
    model.eval()
    with torch.no_grad():
        a = model.generator.sample(8, generator=torch.Generator().manual_seed(3))
        b = loaded.generator.sample(8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.cpu(), b), "a loaded model samples differently for the same seed"
    return loaded


def check_overrides(name: str, data: DataSource, overrides: dict[str, str], steps: int = 2) -> None:
    """``--set``-style string overrides reach the model and change what it does; an unknown key is refused.

    The model built with ``overrides`` and the default one (same seed) train ``steps`` steps on
    ``data``: their tensors must differ, so a setting that is parsed but ignored fails here.
    """
    cls = get_registry().get("models", name)
    expected = cfg.build(cls.Config, overrides)
    model = build_model(name, data.info, overrides)
    for key in overrides:
        assert getattr(model.config, key) == getattr(expected, key), f"override {key} did not apply"
    trained = []
    for built in (build_model(name, data.info), model):
        run = RunConfig(steps=steps, batch_size=16, log_every=steps, sample_every=0, checkpoint_every=0, device="cpu")
        Trainer(built, data, run, None, progress=False).fit()
        trained.append(built.state_dict())
    default, overridden = trained
    same = default.keys() == overridden.keys() and all(
        default[k].shape == overridden[k].shape and torch.equal(default[k], overridden[k]) for k in default
    )
    assert not same, f"overrides {overrides} changed nothing the model does"
    try:
        cfg.build(cls.Config, {"no_such_key_xyz": "1"})
    except ConfigError:
        pass
    else:
        raise AssertionError("an unknown config key was accepted")


def check_model(name: str, data: DataSource, tmp_path: Path, overrides: dict[str, str] | None = None, steps: int = 3) -> Model:
    """The whole contract for model ``name`` on ``data`` (see the module docstring), with ``overrides`` applied."""
    model = build_model(name, data.info, overrides)
    assert model.players(), "a model must declare at least one player"
    check_trains(model, data, tmp_path / "run", steps=steps)
    check_samples(model)
    check_checkpoint_roundtrip(model, tmp_path / "roundtrip.safetensors")
    if overrides:
        check_overrides(name, data, overrides)
    return model


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads (small matrices: 1 is faster, above all on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def plugin(obj: Any, name: str = "inline-test-plugin") -> Iterator[Any]:
    """Register ``obj`` (a module or object with ``@igm.hookimpl`` functions) while the block runs."""
    info = add_plugin(obj, name)
    try:
        yield info
    finally:
        remove_plugin(name)


# ---- pytest plugin (entry point pytest11 "igm"): fixtures every family's tests share ----------

try:
    import pytest
except ImportError:  # igm.testing without pytest: the functions above still work
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def one_thread() -> Iterator[None]:
        """One torch thread for the test: small networks run faster so, above all on a busy machine."""
        with threads(1):
            yield

    @pytest.fixture
    def points() -> TensorSource:
        """:func:`toy_points`: 512 labelled points of a 4-component mixture."""
        return toy_points()

    @pytest.fixture
    def images() -> TensorSource:
        """:func:`toy_images`: 64 labelled 8x8 images in [0, 1]."""
        return toy_images()

    @pytest.fixture
    def inline_plugin() -> Any:
        """:func:`plugin`, for registering a plugin defined in the test: ``with inline_plugin(obj, "name"):``."""
        return plugin
