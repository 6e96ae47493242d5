"""Subnormal floats flushed to zero while a run trains on a CPU.

API::

    flushing() -> bool                   # does this thread flush subnormals to zero now?
    flush_subnormals(on=True)            # context manager: flush (or not) inside, the old state after

A float32 is subnormal below ``tiny`` = 1.18e-38. x86 CPUs compute with such values on a slow
path. Training makes them without asking: the second moments of Adam decay towards 0 for
parameters whose gradients are nearly 0, and every Adam step takes ``sqrt`` of them (torch's CPU
``sqrt`` of a subnormal is slow even in the CPU's denormals-are-zero mode). Flushing (the FTZ and
DAZ modes, which ``torch.set_flush_denormal`` sets) makes a subnormal result 0, so the moments
go straight to 0: a decaying second moment over gan's point generator costs 564 us a round
instead of 2,049, and a gan or sig step on grid25 0.90x the time (benchmarks/subnormals.py).
The weights of the runs measured are the same to the bit: a subnormal second moment only ever
meets Adam's ``eps`` (1e-8), which its square root does not change. The trainer flushes by
default (``RunConfig.flush_subnormals``).

The mode belongs to a thread. POSIX threads inherit it when they start, so torch's intra-op
worker threads flush too only if they started after it was set; on one thread
(``OMP_NUM_THREADS=1``, ``igm fit --threads 1``) every operation flushes. torch has no reader
for the mode, so :func:`flushing` asks the CPU: half of ``tiny`` is subnormal, 0 when flushed.
A CPU without the modes (``set_flush_denormal`` returns False) computes as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_TINY = torch.finfo(torch.float32).tiny


def flushing() -> bool:
    """Whether this thread now flushes subnormal float32 results to zero."""
    return bool((torch.tensor(_TINY, dtype=torch.float32) / 2).item() == 0.0)


@contextlib.contextmanager
def flush_subnormals(on: bool = True) -> Iterator[None]:
    """Flush subnormals to zero (``on``) or keep them inside the block; the thread's old mode after it."""
    before = flushing()
    if on == before:
        yield
        return
    torch.set_flush_denormal(on)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
