"""igm: implicit and semi-implicit generative models, as plugins on one core.

This module is the public API, for applications and plugin authors alike (loaded lazily, so
``import igm`` and ``igm --help`` stay fast). Plugins import from ``igm`` and, for their tests,
``igm.testing`` — nothing deeper (``tests/test_plugin_surface.py`` enforces it)::

    import igm
    model = igm.load("runs/gan/model.safetensors")   # rebuild through the registry
    x = model.generator.sample(64)                    # (64, *event_shape)

The names, by what they are for (docs/plugins.md documents each):

- plugins: ``hookimpl``, ``get_registry``;
- models: ``Model``, ``Player``, ``EmptyConfig``, the adversarial recipe ``AdversarialModel`` /
  ``AdversarialConfig``, the generator recipe ``GeneratorConfig`` with ``resolve_network`` and
  ``generator_net``, the variational recipe ``VariationalModel`` / ``VariationalConfig``,
  ``short_run_note``, ``points_steps``, ``small_mixture``, ``deep_point_generator``, ``IMAGE_RUN_DEFAULTS``, ``bind_labels``; the semi-implicit recipe ``AnnealedBandwidth``,
  ``default_sigma``, ``generator_rate``, ``wide_points``, ``WIDE_RATE``, ``POINTS_M``, ``default_anneal_share``;
- networks (``igm.nn``'s shared backbones): ``MLP``, ``DCGANGenerator``, ``DCGANDiscriminator``,
  ``ConvEncoder``, ``ConvDecoder``, ``one_hot``;
- generators: ``Generator``, ``ImplicitGenerator``, ``SemiImplicitGenerator``,
  ``GaussianLikelihood``, ``BernoulliLikelihood``, ``randn``;
- divergences: ``Divergence``, ``Critic``, ``critic_logits``, ``JSD``, ``KL``, ``Wasserstein``, ``MMD``, ``mmd2``, ``sig_loss``,
  ``annealed_sigma``, ``planned_sigma``, ``flatten_events``;
- likelihood bounds: ``iw_bound``, ``elbo_estimate``, ``log_mean_exp``, ``logsumexp``;
- energy-based models: ``RBMParams``, ``free_energy``, ``bernoulli``, ``gibbs``, ``hidden_input``,
  ``sample_hidden``, ``sample_visible``, ``stacked_free_energy_difference``, ``ais_log_partition``,
  ``Bits``, ``dbn_log_likelihood_bound``, ``dbn_log_likelihood_exact``; the RBM training recipe
  ``RBMTrainingConfig``, ``rbm_parameters``, ``contrastive_divergence_loss``, ``start_chains``,
  ``resize_chains``;
- data: ``DataSource``, ``DataInfo``, ``TensorSource``, ``BatchStream``, ``Batch``, ``open_data``;
- metrics: ``Metric``, ``mode_coverage``; pictures: ``save_samples``, ``save_class_grid``,
  ``class_samples``, ``scatter``, ``histogram``;
- training and checkpoints: ``Trainer``, ``RunConfig``, ``load``, ``save``, ``read_metadata``;
- configs: ``build_config`` (a config dataclass from ``--set``-style values, checked), ``fill_auto``;
- errors and limits: ``IgmError``, ``ConfigError``, ``DataError``, ``CheckpointError``,
  ``TrainingError``, ``check_allocation``.
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
    # plugins
    "get_registry": "igm.registry",
    # models and recipes
    "Model": "igm.models",
    "Player": "igm.models",
    "EmptyConfig": "igm.config",
    "AdversarialModel": "igm.adversarial",
    "AdversarialConfig": "igm.adversarial",
    "GeneratorConfig": "igm.nn.factory",
    "resolve_network": "igm.nn.factory",
    "generator_net": "igm.nn.factory",
    "short_run_note": "igm.models",
    "bind_labels": "igm.models",
    "IMAGE_RUN_DEFAULTS": "igm.models",
    "AnnealedBandwidth": "igm.semi_implicit",
    "default_sigma": "igm.semi_implicit",
    "generator_rate": "igm.semi_implicit",
    "wide_points": "igm.semi_implicit",
    "WIDE_RATE": "igm.semi_implicit",
    "POINTS_M": "igm.semi_implicit",
    "default_anneal_share": "igm.semi_implicit",
    "points_steps": "igm.models",
    "small_mixture": "igm.models",
    "deep_point_generator": "igm.adversarial",
    "VariationalModel": "igm.variational",
    "VariationalConfig": "igm.variational",
    # networks
    "MLP": "igm.nn",
    "DCGANGenerator": "igm.nn",
    "DCGANDiscriminator": "igm.nn",
    "ConvEncoder": "igm.nn",
    "ConvDecoder": "igm.nn",
    "one_hot": "igm.nn",
    # generators
    "Generator": "igm.generators",
    "ImplicitGenerator": "igm.generators",
    "SemiImplicitGenerator": "igm.generators",
    "GaussianLikelihood": "igm.likelihoods",
    "BernoulliLikelihood": "igm.likelihoods",
    "randn": "igm.draws",
    # divergences
    "Divergence": "igm.divergences",
    "Critic": "igm.divergences.base",
    "critic_logits": "igm.divergences.base",
    "JSD": "igm.divergences",
    "KL": "igm.divergences",
    "Wasserstein": "igm.divergences",
    "MMD": "igm.divergences",
    "mmd2": "igm.divergences.mmd",
    "sig_loss": "igm.divergences.sig",
    "annealed_sigma": "igm.divergences.sig",
    "planned_sigma": "igm.divergences.sig",
    "flatten_events": "igm.divergences._distances",
    # likelihood bounds
    "iw_bound": "igm.bounds",
    "elbo_estimate": "igm.bounds",
    "log_mean_exp": "igm.logexp",
    "logsumexp": "igm.logexp",
    # energy-based models
    "RBMParams": "igm.energy",
    "free_energy": "igm.energy",
    "bernoulli": "igm.energy",
    "gibbs": "igm.energy",
    "hidden_input": "igm.energy",
    "sample_hidden": "igm.energy",
    "sample_visible": "igm.energy",
    "stacked_free_energy_difference": "igm.energy",
    "ais_log_partition": "igm.energy",
    "dbn_log_likelihood_bound": "igm.energy",
    "dbn_log_likelihood_exact": "igm.energy",
    "RBMTrainingConfig": "igm.rbm_recipe",
    "rbm_parameters": "igm.rbm_recipe",
    "contrastive_divergence_loss": "igm.rbm_recipe",
    "start_chains": "igm.rbm_recipe",
    "resize_chains": "igm.rbm_recipe",
    "Bits": "igm.bits",
    # data
    "DataSource": "igm.data",
    "DataInfo": "igm.data",
    "TensorSource": "igm.data",
    "BatchStream": "igm.data.base",
    "Batch": "igm.data.base",
    "open_data": "igm.data",
    # metrics and pictures
    "Metric": "igm.metrics",
    "save_samples": "igm.images",
    "scatter": "igm.images",
    "histogram": "igm.images",
    "save_class_grid": "igm.images",
    "class_samples": "igm.images",
    "mode_coverage": "igm.metrics",
    # training and checkpoints
    "Trainer": "igm.trainer",
    "RunConfig": "igm.trainer",
    "load": "igm.checkpoint",
    "save": "igm.checkpoint",
    "read_metadata": "igm.checkpoint",
    # errors and limits
    "IgmError": "igm.errors",
    "ConfigError": "igm.errors",
    "build_config": "igm.config:build",
    "fill_auto": "igm.config",
    "DataError": "igm.errors",
    "CheckpointError": "igm.errors",
    "TrainingError": "igm.errors",
    "check_allocation": "igm.limits",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'igm' has no attribute {name!r}")
    module, _, attr = where.partition(":")  # "module:attr" when the public name differs
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value
