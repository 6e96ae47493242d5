"""Likelihood metrics of restricted Boltzmann machines: ``ais`` and ``pseudo-likelihood``.

Both score models that expose their weights through ``model.rbm_params() -> RBMParams``
(the ``rbm`` family; see :mod:`igm.energy`) on the data source's test split. A deep belief net
exposes ``model.rbm_layers() -> list[RBMParams]`` (bottom first): with one layer it is scored as
an RBM; with more, ``ais`` reports a lower bound (below) and ``pseudo-likelihood`` does not apply.

* ``ais`` — the test log-likelihood ``−mean_i F(v_i) − log Z`` with ``log Z`` from annealed
  importance sampling (``-n`` runs, default 100, BENCHMARKS.md Q3's β schedule; the base-rate
  model from the training split's pixel means). Its standard error combines the AIS error of
  ``log Z`` (delta method) and the standard error of the mean free energy over the test
  examples: ``se = √(se_F² + se_logZ²)``. With at most 20 hidden units it also gives the exact
  ``log Z`` (enumeration of the hidden layer) and the exact log-likelihood.
  For a DBN of several layers the keys are ``log_likelihood_lower_bound`` (and ``_se``):
  :func:`igm.energy.dbn_log_likelihood_bound` with ``posterior_samples`` draws of the up pass
  per test example and the top RBM's ``log Z`` by AIS (base rate: the training images' up-pass
  means); ``exact_*`` when every layer is small enough to enumerate.
* ``pseudo-likelihood`` — exactly scikit-learn's ``BernoulliRBM.score_samples``: for each
  example one visible unit, chosen by ``numpy.random.RandomState(seed).randint(0, V, n)`` (the
  draw scikit-learn makes with ``random_state=seed``), is flipped and the score is
  ``V · log σ(F(ṽ) − F(v))``; reported as the mean over the test split (and its standard error).
  ``-n`` limits the number of test examples.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from igm.energy import (
    MAX_EXACT_HIDDEN,
    AISResult,
    RBMParams,
    ais_log_partition,
    dbn_log_likelihood_bound,
    dbn_log_likelihood_exact,
    flatten,
    free_energy,
    hidden_input,
    log_partition_exact,
    pseudo_likelihood,
    q3_schedule,
)
from igm.errors import ConfigError, DataError
from igm.metrics.base import Metric
from igm.metrics.likelihood import mean_and_se
from igm.progress import ProgressBar

if TYPE_CHECKING:
    from igm.data import DataInfo, DataSource
    from igm.models import Model


def rbm_of(model: Model, metric: str) -> RBMParams:
    """The weights of an RBM-like model, or a one-line error naming the problem."""
    getter = getattr(model, "rbm_params", None)
    if getter is None:
        raise ConfigError(
            f"metric '{metric}' scores restricted Boltzmann machines (models with rbm_params()); "
            f"'{model.name}' is not one: choose another --metric (see 'igm list metrics')"
        )
    return getter().detach(torch.float64)


def rbm_layers_of(model: Model, metric: str) -> list[RBMParams]:
    """The layers of a deep belief net (bottom first; ``model.rbm_layers()``), or the one RBM."""
    getter = getattr(model, "rbm_layers", None)
    if getter is None:
        return [rbm_of(model, metric)]
    return [p.detach(torch.float64) for p in getter()]


def is_rbm(model: Model) -> bool:
    """An RBM, or a deep belief net of one layer."""
    return hasattr(model, "rbm_params") or (hasattr(model, "rbm_layers") and len(model.rbm_layers()) == 1)  # type: ignore[attr-defined]


def test_examples(data: DataSource, metric: str) -> Tensor:
    split = data.split("test")
    if split is None:
        raise DataError(f"metric '{metric}' scores the test split; '{data.info.name}' has none: use a source with one")
    return split[0]


class AISLogLikelihood(Metric):
    """Test log-likelihood of an RBM with ``log Z`` from annealed importance sampling."""

    name = "ais"
    default_n = 100  # AIS runs
    posterior_samples = 10  # up-pass draws per test example for a DBN's bound
    base_examples = 10_000  # training examples whose up-pass means set a DBN top RBM's base rate

    def __init__(self, betas: Tensor | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.betas = betas  # None: the Q3 schedule
        self.dtype = dtype  # of the chains; the log weights accumulate in float64

    def applies_to_model(self, model: Model) -> bool:
        return hasattr(model, "rbm_params") or hasattr(model, "rbm_layers")

    def log_partition(self, params: RBMParams, base: Tensor | None, runs: int, gen: torch.Generator) -> AISResult:
        steps = (q3_schedule() if self.betas is None else self.betas).numel() - 1
        with ProgressBar(steps, description=f"ais ({runs} runs)") as bar:
            return ais_log_partition(params, runs, self.betas, base, gen, self.dtype, progress=bar.update)

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        layers = rbm_layers_of(model, self.name)
        if len(layers) > 1:
            return self.deep_belief_net(layers, data, n, seed)
        params = layers[0]
        x = flatten(test_examples(data, self.name), params)  # (N, V) float64
        f_mean, f_se = mean_and_se(free_energy(params, x))
        train = data.split("train")
        gen = torch.Generator(device=params.W.device).manual_seed(seed)
        runs = n or self.default_n
        ais = self.log_partition(params, None if train is None else train[0], runs, gen)
        out: dict[str, Any] = {
            "log_likelihood": -f_mean - ais.log_z,
            "log_likelihood_se": math.sqrt(f_se**2 + ais.se**2),
            "log_z": ais.log_z,
            "log_z_se": ais.se,
            "log_z_low3": ais.log_z_low,
            "log_z_high3": ais.log_z_high,
            "mean_free_energy": f_mean,
            "free_energy_se": f_se,
            "runs": runs,
            "test_examples": x.shape[0],
            "exact_log_z": None,
            "exact_log_likelihood": None,
        }
        if params.num_hidden <= MAX_EXACT_HIDDEN:
            exact = float(log_partition_exact(params))
            out["exact_log_z"], out["exact_log_likelihood"] = exact, -f_mean - exact
        return out

    def deep_belief_net(self, layers: list[RBMParams], data: DataSource, n: int | None, seed: int) -> dict[str, Any]:
        """The variational lower bound of a DBN, with the top RBM's ``log Z`` by AIS."""
        *directed, top = layers
        x = flatten(test_examples(data, self.name), layers[0])
        gen = torch.Generator(device=top.W.device).manual_seed(seed)
        train = data.split("train")
        base = None
        if train is not None:  # the top RBM's data: the training images' up-pass means
            base = flatten(train[0][: self.base_examples], layers[0])
            for params in directed:
                base = torch.sigmoid(hidden_input(params, base))
        runs = n or self.default_n
        ais = self.log_partition(top, base, runs, gen)
        bound, bound_se = mean_and_se(dbn_log_likelihood_bound(layers, x, ais.log_z, self.posterior_samples, gen))
        out: dict[str, Any] = {
            "estimate": f"variational lower bound on the log-likelihood of a {len(layers)}-layer DBN",
            "log_likelihood_lower_bound": bound,
            "log_likelihood_lower_bound_se": math.sqrt(bound_se**2 + ais.se**2),
            "log_z_top": ais.log_z,
            "log_z_top_se": ais.se,
            "log_z_top_low3": ais.log_z_low,
            "log_z_top_high3": ais.log_z_high,
            "posterior_samples": self.posterior_samples,
            "runs": runs,
            "test_examples": x.shape[0],
            "exact_log_z_top": None,
            "exact_log_likelihood": None,
        }
        if top.num_hidden <= MAX_EXACT_HIDDEN:
            out["exact_log_z_top"] = float(log_partition_exact(top))
            if all(p.num_hidden <= MAX_EXACT_HIDDEN for p in directed):
                out["exact_log_likelihood"] = float(dbn_log_likelihood_exact(layers, x).mean())
        return out


class PseudoLikelihood(Metric):
    """scikit-learn's ``BernoulliRBM.score_samples`` averaged over the test split."""

    name = "pseudo-likelihood"
    default_n = 0  # 0: every test example

    def applies_to(self, data: DataInfo) -> bool:
        return data.value_range == (0.0, 1.0)

    def applies_to_model(self, model: Model) -> bool:
        return is_rbm(model)

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, Any]:
        layers = rbm_layers_of(model, self.name)
        if len(layers) > 1:
            raise ConfigError("metric 'pseudo-likelihood' scores RBMs; this DBN has several layers: use --metric ais")
        params = layers[0]
        if params.visible != "bernoulli":
            raise ConfigError("metric 'pseudo-likelihood' needs Bernoulli visible units; this RBM's are Gaussian: use --metric ais")
        x = flatten(test_examples(data, self.name), params)
        if n:
            x = x[:n]
        index = torch.from_numpy(np.random.RandomState(seed).randint(0, x.shape[1], x.shape[0]))
        mean, se = mean_and_se(pseudo_likelihood(params, x, index))
        return {"pseudo_likelihood": mean, "pseudo_likelihood_se": se, "test_examples": x.shape[0]}
