"""igm: implicit and semi-implicit generative models, as plugins on one core.

The public API (loaded lazily, so ``import igm`` and ``igm --help`` stay fast)::

    import igm
    model = igm.load("runs/gan/model.safetensors")   # rebuild through the registry
    x = model.generator.sample(64)                    # (64, *event_shape)

Building blocks for plugin authors: ``igm.hookimpl``, ``Model``, ``AdversarialModel``,
``Player``, ``Generator``, ``ImplicitGenerator``, ``SemiImplicitGenerator``, ``Divergence``,
``DataSource``, ``DataInfo``, ``Metric``, ``Trainer``, ``RunConfig``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from igm.hookspecs import hookimpl

# deterministic cuBLAS for exact resume on CUDA (read when CUDA starts, so set before torch does)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

__version__ = "0.1.0"

_LAZY = {
    "load": "igm.checkpoint",
    "save": "igm.checkpoint",
    "Model": "igm.models",
    "AdversarialModel": "igm.models",
    "AdversarialConfig": "igm.models",
    "Player": "igm.models",
    "Generator": "igm.generators",
    "ImplicitGenerator": "igm.generators",
    "SemiImplicitGenerator": "igm.generators",
    "GaussianLikelihood": "igm.generators",
    "BernoulliLikelihood": "igm.generators",
    "Divergence": "igm.divergences",
    "DataSource": "igm.data",
    "DataInfo": "igm.data",
    "TensorSource": "igm.data",
    "Metric": "igm.metrics",
    "Trainer": "igm.trainer",
    "RunConfig": "igm.trainer",
    "IgmError": "igm.errors",
    "get_registry": "igm.registry",
    "open_data": "igm.data",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'igm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
