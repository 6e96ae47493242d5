"""Batches of a host-resident source, copied to an accelerator one batch ahead.

A source larger than the device's data budget (:func:`igm.limits.device_data_budget`) stays in
host memory. :class:`PrefetchStream` wraps its stream: while the model trains on batch k, batch
k + 1 is drawn on the host, placed in pinned (page-locked) memory and copied on a side CUDA
stream, so the copy overlaps the step instead of stalling it. The training stream waits for the
copy before it reads the batch.

Exact resume is kept: the wrapped stream has already drawn one batch more than the trainer has
used, so :meth:`PrefetchStream.state_dict` returns the state it had *before* that batch — the
position after the last batch the trainer took — and a resumed run draws the very same batches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from igm.data.base import Batch, BatchStream


def _pinned(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.pin_memory()


class PrefetchStream(BatchStream):
    """``inner``'s batches on ``device``, one copied ahead (from pinned memory on a side stream on CUDA).

    ``pin`` (default: on CUDA) pins each host batch so that its copy is asynchronous. On a device
    without streams (the CPU, in tests) the next batch is still drawn ahead and moved, synchronously.
    """

    def __init__(self, inner: BatchStream, device: torch.device, pin: bool | None = None) -> None:
        self.inner, self.device = inner, torch.device(device)
        cuda = self.device.type == "cuda"
        self.pin = cuda if pin is None else pin
        self.copies = torch.cuda.Stream(self.device) if cuda else None  # the side stream of the copies
        self._ahead: tuple[Batch, dict[str, Tensor]] | None = None  # (batch on the device, inner state before it)

    def _fetch(self) -> tuple[Batch, dict[str, Tensor]]:
        state = self.inner.state_dict()
        x, y = next(self.inner)
        if self.pin:
            x, y = _pinned(x), _pinned(y)
        if self.copies is None:
            return (x.to(self.device), None if y is None else y.to(self.device)), state
        with torch.cuda.stream(self.copies):
            batch = (x.to(self.device, non_blocking=True), None if y is None else y.to(self.device, non_blocking=True))
        return batch, state

    def __next__(self) -> Batch:
        if self._ahead is None:
            self._ahead = self._fetch()
        batch = self._ahead[0]
        if self.copies is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.copies)  # the copy is done before the step reads the batch
            for t in batch:
                if t is not None:
                    t.record_stream(current)  # its memory is not reused while the step still reads it
        self._ahead = self._fetch()
        return batch

    def state_dict(self) -> dict[str, Tensor]:
        """The inner stream's state after the last batch handed out (not the one fetched ahead)."""
        return self._ahead[1] if self._ahead is not None else self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self._ahead = None  # the batch fetched ahead belongs to the old position
        self.inner.load_state_dict(state)

    def to_device(self, device: torch.device) -> bool:
        return torch.device(device) == self.device
