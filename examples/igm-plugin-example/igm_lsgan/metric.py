"""``energy``: the energy distance between generated samples and the data's test split.

``E(P, Q) = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖`` with X, X' ~ data and Y, Y' ~ generator
(Székely & Rizzo). It is zero iff the two laws are equal and works for any event shape
(examples are flattened). ``igm eval CHECKPOINT --metric energy`` prints it.
"""

from __future__ import annotations

import torch

from igm import Metric


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The V-statistic estimate of the energy distance between samples x (N, ...) and y (M, ...)."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(2 * xy - xx - yy)


class Energy(Metric):
    """Energy distance between generated samples and the data's test split (0 when equal)."""

    name = "energy"
    default_n = 2_000

    def __call__(self, model, data, n=None, seed=0):
        n = n or self.default_n
        split = data.split("test") or data.split("train")
        real = split[0]
        pick = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        with torch.no_grad():
            fake = model.generator.sample(n, generator=torch.Generator().manual_seed(seed)).cpu()
        return {"energy": energy_distance(real[pick], fake), "samples": n}
