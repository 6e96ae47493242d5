"""Shared helpers for the performance suites (P1, P5, P6 of shared/BENCHMARKS.md).

Every figure here is a ratio measured side by side in one run: the contenders are timed in
interleaved rounds (the order rotates from round to round, so neither always runs first),
the ratio is taken inside each round and the median over rounds is reported. Absolute
medians are reported too, for information only: this machine is shared and noisy.

Benchmarks never fail on a threshold. Each one writes ``benchmarks/results/<name>.json``
(machine info included) and adds a one-line summary that pytest prints at the end of the run.

Environment knobs (all optional):

- ``IGM_BENCH_THREADS``: torch intra-op threads for the in-process suites (default 1). On a
  shared 2-core machine two threads stall whenever the other core is busy, which makes every
  timing swing by 2-10x; one thread keeps the comparison stable and is the same for both
  contenders.
- ``IGM_BENCH_REPEATS``: interleaved rounds (each suite has its own default, at least 5).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import SUMMARIES, env_int  # noqa: E402


@pytest.fixture(scope="module")
def torch_threads() -> Iterator[int]:
    """Pin torch's intra-op threads (``IGM_BENCH_THREADS``, default 1) for a module, then restore."""
    import torch

    before = torch.get_num_threads()
    threads = env_int("IGM_BENCH_THREADS", 1)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARIES:
        terminalreporter.write_sep("-", "igm benchmark summary")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
