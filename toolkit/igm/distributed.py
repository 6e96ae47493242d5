"""Data-parallel training on PyTorch's own engine: torchrun and DistributedDataParallel.

``igm fit ... --nproc N`` calls :func:`launch`, which starts N workers through
``torch.distributed.run`` (the library behind ``torchrun``) on this machine; across machines,
``torchrun --nnodes M --nproc-per-node N --rdzv-endpoint HOST:PORT -m igm fit ...`` runs the
same command. A worker finds its rank in the environment torchrun sets (:func:`init_from_env`),
joins the process group (gloo on CPU, NCCL on CUDA, or ``--backend``) and the trainer wraps each
player's loss in its own :class:`~torch.nn.parallel.DistributedDataParallel` that owns only that
player's parameters, so gradients are averaged across ranks exactly when that player steps.

Rank 0 alone writes files and shows progress. Workers started by :func:`launch` watch their
launcher and end when it dies (even by SIGKILL), so no orphan keeps training and writing. A worker's error goes to torchrun's error file;
the launcher prints the first failing rank's error once and exits with its status, after
torchrun has stopped the other ranks. A worker that finished cleanly leaves through
:func:`exit_worker`, without the interpreter's teardown (see there why).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import Tensor, nn

from igm.errors import IgmError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (world_size 1: a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather(self, tensor: Tensor) -> list[Tensor]:
        """Every rank's copy of ``tensor`` (same shape and dtype on all ranks), in rank order."""
        if not self.enabled:
            return [tensor]
        device = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        local = tensor.to(device)
        out = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(out, local)
        return [t.cpu() for t in out]


SINGLE = DistContext()


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


LAUNCHER_ENV = "IGM_LAUNCHER_PID"


def set_threads(requested: int | None = None) -> int:
    """Set torch's CPU threads for this process: ``requested``, else cores / local processes under torchrun.

    A single process keeps torch's own default (every core). Returns the count in force.
    """
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if requested is None and local > 1:
        requested = max(1, (os.cpu_count() or 1) // local)
    if requested is not None:
        torch.set_num_threads(requested)
    return torch.get_num_threads()


def watch_launcher(poll_s: float = 0.5) -> None:
    """End this worker as soon as the ``igm fit --nproc`` launcher that started it is gone.

    The launcher is the worker's parent; when it dies the worker is re-parented, which the
    parent pid shows at once. Workers started by a user's own torchrun are left alone.
    """
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher or not launcher.isdigit() or os.getppid() != int(launcher):
        return

    def watch() -> None:
        while os.getppid() == int(launcher):
            time.sleep(poll_s)
        os._exit(1)  # files are written atomically: stopping between writes loses nothing

    threading.Thread(target=watch, name="igm-launcher-watch", daemon=True).start()


def init_from_env(backend: str = "auto") -> DistContext:
    """Join the process group torchrun described in the environment; SINGLE when there is none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    watch_launcher()
    backend = default_backend() if backend == "auto" else backend
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)


def shutdown(ctx: DistContext, clean: bool = True) -> None:
    """Leave the process group; after a clean run, only once every rank is done (no rank exits early)."""
    if ctx.enabled and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def exit_worker(status: int = 0) -> NoReturn:
    """End this worker process now with ``status``: stdio flushed, the interpreter's teardown skipped.

    Call it after :func:`shutdown`, when every rank is done and every file is closed: the
    teardown has nothing left to do, and it is where C++ threads still alive get destroyed,
    which once aborted a finished worker (benchmarks/README.md, "Distributed throughput").
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class PlayerLoss(nn.Module):
    """``forward(batch) = model.loss(player, batch)``: the unit DDP wraps for one player."""

    def __init__(self, model: nn.Module, player: str) -> None:
        super().__init__()
        self.model = model
        self.player = player

    def forward(self, batch):  # noqa: ANN001, ANN201 - whatever the model's loss takes and gives
        return self.model.loss(self.player, batch)


def wrap_player(model: nn.Module, player_params: list[nn.Parameter], name: str, device: torch.device) -> nn.Module:
    """DDP over ``model.loss(name, .)`` that syncs only this player's parameters."""
    from torch.nn.parallel import DistributedDataParallel

    module = PlayerLoss(model, name)
    mine = {id(p) for p in player_params}
    others = [f"model.{n}" for n, p in model.named_parameters() if id(p) not in mine]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, others)
    device_ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)  # buffers follow rank 0 (default)


def report_worker_error(exc: BaseException, ctx: DistContext) -> bool:
    """Record a worker's error for the launcher (torchrun's error file); True when recorded."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not ctx.enabled or not path:
        return False
    message = str(exc) if isinstance(exc, IgmError) else f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"message": message, "timestamp": int(time.time())}, fh)
    return True


def launch(nproc: int, worker_argv: list[str]) -> int:
    """Run ``python -m igm <worker_argv>`` on ``nproc`` local workers through torch.distributed.run.

    Returns the exit status: 0, or the first failing rank's (its error printed once).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ[LAUNCHER_ENV] = str(os.getpid())
    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "-m", "igm", *worker_argv])
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        message = failure.message if isinstance(failure.message, str) else failure.message.get("message", "")
        if not message or message.startswith("To enable traceback"):
            message = f"exited with status {failure.exitcode}"
        print(f"Error: rank {rank}: {message}", file=sys.stderr)
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0
