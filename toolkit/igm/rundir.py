"""The run directory: one writer at a time, and a metrics log that survives any interruption.

A run directory (``igm fit --out DIR``) holds ``config.toml``, ``metrics.jsonl``,
``trainer.safetensors`` (the resumable checkpoint: model, optimizers, RNGs, data position),
``model.safetensors`` (the model alone, for ``igm.load``) and sample pictures.

- :class:`RunLock` is an OS lock (``flock`` on ``DIR/.igm.lock``) held for a run's whole life:
  a second ``igm fit`` into the same directory is refused with one line naming the holder. The
  kernel drops the lock when its process dies, however it dies, so a killed run never leaves
  the directory locked. Workers that ``igm fit --nproc N`` starts inherit their launcher's lock.
- :func:`read_metrics` reads ``metrics.jsonl`` line by line and skips what is not a complete
  JSON object (a line cut by a full disk or a kill); :func:`rewind_metrics` keeps the entries
  up to the checkpoint a resumed run continues from.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from igm.errors import ConfigError

LOCK_FILE = ".igm.lock"
INHERITED_LOCK_ENV = "IGM_RUN_LOCK"  # set by the --nproc launcher: the directory whose lock it holds
_HELD: dict[Path, list[int]] = {}  # directories this process has locked -> [descriptor, holders]


class RunLock:
    """An exclusive lock on a run directory for as long as this object is held (a context manager)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.held = False

    @property
    def inherited(self) -> bool:
        held = os.environ.get(INHERITED_LOCK_ENV)
        return held is not None and Path(held).resolve() == self.directory.resolve()

    def acquire(self) -> RunLock:
        """Take the lock (creating the directory), or raise ConfigError naming the process that holds it.

        Holding it again in the same process (the CLI, then the trainer) only counts a holder.
        """
        if self.held or self.inherited:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        key = self.directory.resolve()
        if key not in _HELD:
            fd = os.open(key / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                error = self._in_use(fd)
                os.close(fd)
                raise error from None
            os.ftruncate(fd, 0)
            record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.write(fd, (json.dumps(record) + "\n").encode())
            _HELD[key] = [fd, 0]
        _HELD[key][1] += 1
        self.held = True
        return self

    def check_free(self) -> None:
        """ConfigError naming the holder when another process holds the lock now (writes nothing)."""
        if self.held or self.inherited or self.directory.resolve() in _HELD:
            return
        try:
            fd = os.open(self.directory / LOCK_FILE, os.O_RDONLY)
        except OSError:
            return  # no lock file: nobody has held it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._in_use(fd) from None
        finally:
            os.close(fd)

    def _in_use(self, fd: int) -> ConfigError:
        return ConfigError(
            f"{self.directory} is in use by another igm run ({_describe_holder(fd)}): wait for it to finish, "
            "or choose another --out"
        )

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        key = self.directory.resolve()
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            os.close(_HELD.pop(key)[0])  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe_holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {int(record['pid'])} on {str(record['host'])[:64]!r}, since {str(record['since'])[:32]}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "a process that is starting"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The complete entries of a ``metrics.jsonl`` (JSON objects with an integer ``step``), in order."""
    if not path.exists():
        return []
    if not path.is_file():
        raise ConfigError(f"{path} is not a file: move it away so that igm can write its metrics log there")
    entries = []
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                continue  # cut short by a kill or a full disk
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("step"), int):
                entries.append(entry)
    return entries


def rewind_metrics(path: Path, step: int) -> list[dict[str, Any]]:
    """Keep the entries of ``metrics.jsonl`` up to ``step`` (rewritten atomically); returns them."""
    from igm.checkpoint import write_atomic

    kept = [entry for entry in read_metrics(path) if entry["step"] <= step]
    write_atomic(path, "".join(json.dumps(entry) + "\n" for entry in kept).encode())
    return kept
