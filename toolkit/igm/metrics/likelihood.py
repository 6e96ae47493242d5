"""Test log-likelihood of models with a variational bound (BENCHMARKS.md Q3): the ``nll`` metric.

For each test example x the model's k log importance weights ``log w_i = log p(x, z_i) - log q(z_i|x)``
(the :class:`igm.bounds.HasLikelihoodBound` protocol) give

- ``nll``  = -L_k(x) = -log (1/k) sum_i w_i, the importance-sampling estimate of -log p(x)
  (Burda et al.'s protocol with k = 5,000); it is an upper bound in expectation and tightens as k grows;
- ``elbo`` = mean_i log w_i, the ELBO (averaged over the same k draws, so nearly exact).

Both are averaged over the test examples and reported with their standard error over the
examples (sample std / sqrt(n)). ``igm eval CHECKPOINT --metric nll`` scores the data source's
test split; ``-n N`` scores its first N test examples only (the default is all of them).
Examples go through in batches and the k draws in chunks (see :func:`igm.bounds.log_weights`),
so memory stays bounded for any k.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from igm.bounds import HasLikelihoodBound, elbo_estimate, iw_bound
from igm.errors import ConfigError, DataError
from igm.metrics.base import Metric
from igm.progress import ProgressBar

if TYPE_CHECKING:
    from igm.data import DataInfo, DataSource
    from igm.models import Model

DEFAULT_K = 5_000
BATCH = 100  # test examples per batch


def mean_and_se(values: Tensor) -> tuple[float, float]:
    """Mean and standard error (std / sqrt(n), float64) of a 1-D tensor of per-example values."""
    v = values.double()
    se = float(v.std() / math.sqrt(v.numel())) if v.numel() > 1 else float("nan")
    return float(v.mean()), se


def per_example_bounds(
    model: HasLikelihoodBound,
    x: Tensor,
    labels: Tensor | None = None,
    k: int = DEFAULT_K,
    seed: int = 0,
    batch_size: int = BATCH,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """L_k and the ELBO of every example of ``x`` (n, *event) under ``model``: two (n,) tensors on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    is_module = isinstance(model, torch.nn.Module)
    device = next(model.parameters()).device if is_module else torch.device("cpu")
    was_training = model.training if is_module else False
    if is_module:
        model.eval()
    bound, elbo = [], []
    try:
        with torch.no_grad(), ProgressBar(x.shape[0], description=f"nll (k = {k})", enabled=progress) as bar:
            for start in range(0, x.shape[0], batch_size):
                xb = x[start : start + batch_size].to(device)
                yb = None if labels is None else labels[start : start + batch_size].to(device)
                log_w = model.log_weights(xb, k, yb, generator=gen)  # (k, b)
                bound.append(iw_bound(log_w).cpu())
                elbo.append(elbo_estimate(log_w).cpu())
                bar.update(min(x.shape[0], start + batch_size))
    finally:
        if is_module:
            model.train(was_training)
    return torch.cat(bound), torch.cat(elbo)


def likelihood_summary(bound: Tensor, elbo: Tensor, k: int) -> dict[str, float]:
    """The ``nll`` metric's numbers from per-example L_k and ELBO (n,): means and standard errors."""
    nll, nll_se = mean_and_se(-bound)
    elbo_mean, elbo_se = mean_and_se(elbo)
    return {"nll": nll, "nll_se": nll_se, "elbo": elbo_mean, "elbo_se": elbo_se, "k": k, "examples": bound.numel()}


class TestNLL(Metric):
    """Test NLL by importance sampling (k = 5,000) and the ELBO, each with its standard error."""

    __test__ = False  # not a pytest class
    name = "nll"
    default_n = 0  # 0: the whole test split
    k = DEFAULT_K

    def applies_to(self, data: DataInfo) -> bool:
        return True  # any data with a test split; the model decides (applies_to_model)

    def applies_to_model(self, model: Model) -> bool:
        return isinstance(model, HasLikelihoodBound)

    def __call__(self, model: Model, data: DataSource, n: int | None = None, seed: int = 0) -> dict[str, float]:
        if not self.applies_to_model(model):
            raise ConfigError(
                f"metric 'nll' needs a model with a likelihood bound (vae, aavae); '{model.name}' has none: "
                "choose another --metric"
            )
        test = data.split("test")
        if test is None:
            raise DataError(
                f"metric 'nll' scores a test split and '{data.info.name}' has none: "
                "use a source with one (binarized-mnist, mnist, digits, npz with x_test)"
            )
        if tuple(test[0].shape[1:]) != tuple(model.data.event_shape):
            raise DataError(
                f"'{data.info.name}' holds examples of shape {tuple(test[0].shape[1:])}, but the model was "
                f"trained on {tuple(model.data.event_shape)}: evaluate on the data it was trained on"
            )
        n = n or self.default_n or test[0].shape[0]
        x, labels = test[0][:n], (None if test[1] is None else test[1][:n])
        return likelihood_summary(*per_example_bounds(model, x, labels, self.k, seed, progress=True), self.k)
