"""How much memory igm lets one allocation take, so that a bad input fails before it is read.

API (two functions and one environment variable)::

    memory_budget() -> int                       # bytes igm may allocate now
    check_allocation(nbytes, what, hint) -> None  # DataError when nbytes > memory_budget()

``device_data_budget(device)`` is how much of an accelerator's memory a data source may take to
live there (``IGM_DEVICE_DATA_LIMIT``, else a quarter of the device's memory).

The budget is ``IGM_MEMORY_LIMIT`` when it is set (a byte count with an optional K, M, G or T
suffix, powers of 1024: ``512M``, ``8G``, ``1073741824``), else the memory the system has
available now (``MemAvailable`` of ``/proc/meminfo`` on Linux, else ``os.sysconf``'s available
pages times the page size), else no limit. Callers pass what they are about to allocate (an
``.npz`` member's size from its header, a model's parameter bytes) before allocating it.
"""

from __future__ import annotations

import os
import re

from igm.errors import ConfigError, DataError

ENV = "IGM_MEMORY_LIMIT"
UNLIMITED = 1 << 62
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str) -> int:
    """``"512M"`` -> 536870912; ``"1.5G"``, ``"100"``, ``"8 GiB"`` work too; ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if match is None:
        raise ConfigError(f"{ENV}={text!r} is not a byte count: use e.g. 512M, 8G or 1073741824")
    return int(float(match.group(1)) * _SUFFIX[match.group(2)])


def _available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_budget() -> int:
    """Bytes one allocation may take: ``IGM_MEMORY_LIMIT``, else the available memory, else no limit."""
    text = os.environ.get(ENV, "").strip()
    if text:
        return parse_bytes(text)
    return _available() or UNLIMITED


def human(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def check_allocation(nbytes: int, what: str, hint: str = "") -> None:
    """DataError ``"<what> needs N GiB but only M GiB ... : <hint>"`` when ``nbytes`` exceeds the budget."""
    budget = memory_budget()
    if nbytes > budget:
        where = f"{ENV}={os.environ[ENV]}" if os.environ.get(ENV, "").strip() else "available memory"
        fix = hint or "use a smaller input"
        raise DataError(
            f"{what} needs {human(nbytes)} but the limit is {human(budget)} ({where}): "
            f"{fix}, or raise {ENV} if the machine really has the memory"
        )


DEVICE_DATA_ENV = "IGM_DEVICE_DATA_LIMIT"
DEVICE_DATA_SHARE = 0.25  # of the device's memory, for training data that lives there


def device_data_budget(device) -> int:  # noqa: ANN001 - a torch.device; torch is imported only when asked
    """Bytes of training data that may live on ``device``: ``IGM_DEVICE_DATA_LIMIT``, else a quarter of its memory."""
    text = os.environ.get(DEVICE_DATA_ENV, "").strip()
    if text:
        return parse_bytes(text)
    if device.type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory * DEVICE_DATA_SHARE)
    return 0
