"""The generic trainer: runs any :class:`igm.Model` by stepping the players it declares.

Each round (one *step*) every player takes ``player.steps`` optimizer steps in order, each on
a fresh batch; only that player's parameters collect gradients. Around that loop the trainer
keeps the run's promises:

- a progress bar with losses and steps/s; ``metrics.jsonl`` (one JSON line per ``log_every``
  steps: the mean loss of each player over the interval, steps/s, wall time);
- sample pictures every ``sample_every`` steps (fixed noise, so frames are comparable);
- checkpoints at step 0, every ``checkpoint_every`` steps and at the end: ``trainer.safetensors``
  is the whole resumable state in one atomically written file (the model's tensors, optimizer
  states, step, data-stream position and every RNG state), then ``model.safetensors`` the model
  alone (loadable by ``igm.load``). Resume reads the trainer file only, so a run killed at any
  moment, even between the two writes, continues from its last complete checkpoint;
- exact resume: a run stopped after step k and resumed reaches the same tensors, bit for bit
  on CPU, as a run that never stopped; ``metrics.jsonl`` is rewound to the checkpoint;
- a non-finite loss, or non-finite parameters at checkpoint time, stop the run with an error
  naming the player (or tensor) and step; nothing non-finite is ever checkpointed, so the last
  checkpoint is a good one; a failed write (a full disk) or Ctrl-C stops with one line saying
  where the run can be resumed from;
- subnormal floats flushed to zero on the CPU while it trains (``flush_subnormals``,
  :mod:`igm.subnormals`): Adam's decaying second moments otherwise put every step on the CPU's
  slow path for them;
- data parallel over several processes (:mod:`igm.distributed`): each player's loss runs inside
  its own DistributedDataParallel, each rank reads its own shard of the data with its own seed,
  and rank 0 alone writes files; the trainer state holds every rank's RNG and data position.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from igm import checkpoint
from igm.data.base import Batch, DataSource
from igm.data.prefetch import PrefetchStream
from igm.distributed import SINGLE, DistContext, wrap_player
from igm.errors import CheckpointError, ConfigError, Interrupted, RunWriteError, TrainingError
from igm.models import Model
from igm.progress import ProgressBar
from igm.rundir import RunLock, rewind_metrics
from igm.subnormals import flush_subnormals
from igm.tracking import BEST_FILE, Evaluator, TensorBoardLog

METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
TRAINER_FORMAT = "2"  # 2: the trainer file holds the model's tensors too ("model." keys)
MODEL_PREFIX = "model."
COMPILE_BACKEND = "inductor"  # torch.compile's backend for --compile (tests use "eager")


@dataclass
class RunConfig:
    """How long and how a run trains (the model's own settings live in its config)."""

    steps: int = 5000
    batch_size: int = 256
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 100
    sample_every: int = 1000  # 0: only at the end
    checkpoint_every: int = 1000  # 0: only at the end
    num_samples: int = 0  # samples in each picture; 0: 2,000 points or 64 images
    lr_decay: Literal["none", "cosine", "linear"] = "none"  # every player's lr -> 0 at the last step
    eval_every: int = 0  # steps between scores of eval_metrics (they also run at the end); 0: at the end only
    eval_metrics: tuple[str, ...] = ()  # registered metrics to run during training
    eval_n: int = 0  # samples per score; 0: each metric's default
    keep_best: str = ""  # "METRIC.KEY[:min|:max]": keep best.safetensors, the model of the best score
    tensorboard: bool = False  # TensorBoard events of losses, scores and pictures in DIR/tensorboard
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of every loss (divergences keep float32 where needed)
    compile: bool = False  # torch.compile each player's loss
    flush_subnormals: bool = True  # CPU: subnormal floats are 0 while training (faster; igm.subnormals)

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key.replace('_', '-')} must be a positive integer, got {getattr(self, key)}")
        for key in ("sample_every", "checkpoint_every", "num_samples", "eval_every", "eval_n"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be 0 or positive, got {getattr(self, key)}")
        if self.num_samples > 100_000:
            raise ValueError(f"num_samples is at most 100000 (a picture of samples), got {self.num_samples}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must lie in 0..2**63-1, got {self.seed}")
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"unknown device '{self.device}': use auto, cpu, cuda or cuda:N")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' asked for, but CUDA is not available here: use --device cpu")
    return device


def lr_factor(kind: str, step: int, steps: int) -> float:
    """The share of its base learning rate a player uses in step ``step`` (0-based) of ``steps``."""
    if kind == "none":
        return 1.0
    t = min(step / steps, 1.0)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if kind == "linear":
        return 1.0 - t
    raise ValueError(f"unknown lr_decay '{kind}'")


def loss_and_logs(out: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """A model's loss output as (scalar loss, extra values to log)."""
    if isinstance(out, Tensor):
        return out, {}
    extras = {k: v for k, v in out.items() if k != "loss"}
    return out["loss"], extras


class Trainer:
    """The generic trainer: steps every player of any model, with checkpoints and exact resume."""

    def __init__(
        self,
        model: Model,
        data: DataSource,
        run: RunConfig | None = None,
        out_dir: str | Path | None = None,
        progress: bool = True,
        dist: DistContext | None = None,
    ) -> None:
        self.run = run or RunConfig()
        self.model, self.data = model, data
        self.dist = dist or SINGLE
        self.main = self.dist.is_main
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress and self.main
        self.device = resolve_device(self.run.device, self.dist.local_rank)
        if self.device.type == "cuda":
            deterministic_cuda()
        self.model.to(self.device).train()
        self.plan_note = model.plan(self.run.steps)  # schedules that are shares of the run; a short-run note
        self.players = model.players()
        if not self.players:
            raise TypeError(f"model '{model.name}' declares no players")
        self.optimizers = [p.make_optimizer() for p in self.players]
        mine = [{id(q) for q in p.parameters} for p in self.players]
        trainable = [q for q in model.parameters() if q.requires_grad]
        # parameters to freeze while each player steps, so backward skips the other players
        self.others = [[q for q in trainable if id(q) not in ids] for ids in mine]
        # each player's loss as a callable; under DDP, one wrapper per player that syncs only its parameters
        self.losses = [
            wrap_player(model, p.parameters, p.name, self.device) if self.dist.enabled else self._plain_loss(p.name)
            for p in self.players
        ]
        if self.run.compile:
            self.losses = [torch.compile(fn, backend=COMPILE_BACKEND) for fn in self.losses]
        self.autocast = (  # a disabled autocast still costs ~5 us per step and player: none at all in fp32
            torch.autocast(self.device.type, dtype=torch.bfloat16) if self.run.precision == "bf16" else contextlib.nullcontext()
        )
        self.stream = data.stream(self.run.batch_size, self.run.seed, self.dist.rank, self.dist.world_size)
        self.data_on_device = place_stream(self.stream, self.device)
        if not self.data_on_device and self.device.type == "cuda":  # too large for the device: copied one batch ahead
            self.stream = PrefetchStream(self.stream, self.device)
        # on an accelerator, losses stay on the device and are read (and checked) at log time only
        self.defer_sync = self.device.type != "cpu"
        self._pending: list[tuple[int, str, Tensor]] = []  # (step, player, loss) not yet checked
        self._shown: dict[str, float] = {}  # the last logged means, for the progress display
        self.step = 0
        self.saved_step: int | None = None  # the step of the last complete checkpoint in out_dir
        self.begun = False  # begin() has restored or started the run
        wants_scores = self.run.eval_metrics or self.run.keep_best
        self.evaluator = Evaluator(self.run.eval_metrics, self.run.eval_every, self.run.eval_n, self.run.keep_best) \
            if wants_scores else None
        self.scores: dict[str, float] = {}  # the latest scores, "metric.key" -> value
        self.tensorboard: TensorBoardLog | None = None
        self.preview_noise_seed = self.run.seed + 12345

    def _plain_loss(self, player: str) -> Callable[[Batch], Any]:
        return lambda batch: self.model.loss(player, batch)  # looked up per call, as a patched loss expects

    # ---- the loop ----------------------------------------------------------------------

    def train_step(self) -> dict[str, float | Tensor]:
        """One round: every player steps ``player.steps`` times. Returns each player's last loss.

        On the CPU the losses are floats, checked at once. On an accelerator they are detached
        device tensors, so the step never waits for the device; :meth:`check_losses` reads them
        at log time (and before anything is written) and names the first non-finite one.
        """
        losses: dict[str, float | Tensor] = {}
        if self.run.lr_decay != "none":  # a function of the step alone, so resume stays exact
            factor = lr_factor(self.run.lr_decay, self.step, self.run.steps)
            for player, opt in zip(self.players, self.optimizers):
                for group in opt.param_groups:
                    group["lr"] = player.lr * factor
        for player, opt, others, player_loss in zip(self.players, self.optimizers, self.others, self.losses):
            for q in others:
                q.requires_grad_(False)
            try:
                for _ in range(player.steps):
                    x, y = next(self.stream)
                    x = x.to(self.device, non_blocking=True)
                    y = None if y is None else y.to(self.device, non_blocking=True)
                    with self.autocast:
                        loss, extras = loss_and_logs(player_loss((x, y)))
                    if self.defer_sync:
                        value: float | Tensor = loss.detach()
                        self._pending.append((self.step + 1, player.name, value))
                    else:
                        value = loss.item()
                        if not math.isfinite(value):
                            self._non_finite(player.name, value, self.step + 1)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if player.clip_grad_norm:
                        torch.nn.utils.clip_grad_norm_(player.parameters, player.clip_grad_norm)
                    opt.step()
                    losses[player.name] = value
                    for key, extra in extras.items():
                        losses[f"{player.name}.{key}"] = extra.detach() if self.defer_sync else float(extra)
            finally:
                for q in others:
                    q.requires_grad_(True)
        self.step += 1
        return losses

    def _non_finite(self, player: str, value: float, step: int) -> None:
        raise TrainingError(
            f"the {player} loss became {value} at step {step}; "
            f"{self._kept()} lower the learning rate or change the config and retry"
        )

    def check_losses(self) -> None:
        """Read the losses of the steps since the last check (one device sync); TrainingError at the first non-finite."""
        if not self._pending:
            return
        values = torch.stack([loss.float() for _, _, loss in self._pending])
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            step, player, _ = self._pending[first]
            self._non_finite(player, float(values[first]), step)
        self._pending.clear()

    def _kept(self) -> str:
        if self.out_dir is not None and self.saved_step is not None:
            return f"the last good checkpoint (step {self.saved_step}) is kept in {self.out_dir};"
        return "nothing was saved;"

    def _resume_hint(self) -> str:
        if self.out_dir is None or self.saved_step is None:
            return "nothing was saved"
        return (
            f"the last complete checkpoint (step {self.saved_step}) is in {self.out_dir}: "
            f"continue with igm fit --resume --out {self.out_dir}"
        )

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train to ``run.steps`` (continuing a saved run when ``resume``); returns the last log entry.

        With an ``out_dir``, rank 0 holds the run directory's lock for the whole run.
        """
        return self._guarded(lambda: self._fit(resume))

    def begin(self, resume: bool = False) -> None:
        """Restore the saved run (``resume``) or start a new one; ``fit`` then trains from there.

        Called by itself, it lets a caller know the run can continue before it prints or writes.
        """
        self._guarded(lambda: self.restore() if resume else self._start())
        self.begun = True

    def _guarded(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` holding the run directory's lock; a failed write or Ctrl-C become one-line errors."""
        lock = RunLock(self.out_dir) if self.out_dir is not None and self.main else None
        if lock is not None:
            lock.acquire()
        try:
            return work()
        except OSError as exc:
            where = exc.filename or self.out_dir
            raise RunWriteError(
                f"cannot write {where} ({exc.strerror or exc}) at step {self.step}; {self._resume_hint()} "
                "once the cause (disk space, permissions) is fixed"
            ) from None
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted at step {self.step}; {self._resume_hint()}") from None
        finally:
            if lock is not None:
                lock.release()

    def _fit(self, resume: bool) -> dict[str, Any]:
        if not self.begun:
            self.restore() if resume else self._start()
            self.begun = True
        if self.step >= self.run.steps:
            return {"step": self.step}
        if self.run.tensorboard and self.main and self.out_dir is not None and self.tensorboard is None:
            self.tensorboard = TensorBoardLog(self.out_dir, resume_step=self.step + 1 if self.step else None)
        try:
            with flush_subnormals(self.run.flush_subnormals):
                return self._loop()
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
                self.tensorboard = None

    def _loop(self) -> dict[str, Any]:
        sums: dict[str, float] = {}
        count, t_log, t_start = 0, time.perf_counter(), time.perf_counter()
        last: dict[str, Any] = {"step": self.step}
        shown: dict[str, float] = {}
        with ProgressBar(self.run.steps, self.step, f"fit {self.model.name}", enabled=self.progress) as bar:
            while self.step < self.run.steps:
                losses = self.train_step()
                count += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value
                shown = self._shown if self.defer_sync else losses
                if self.step % self.run.log_every == 0 or self.step == self.run.steps:
                    self.check_losses()
                    now = time.perf_counter()
                    last = {"step": self.step, **{k: float(v) / count for k, v in sums.items()}}
                    self._shown = {k: v for k, v in last.items() if k != "step"}
                    last["steps_per_s"] = count / (now - t_log) if now > t_log else 0.0
                    last["elapsed_s"] = now - t_start
                    self._log(last)
                    sums, count, t_log = {}, 0, now
                if self.evaluator is not None and self.evaluator.due(self.step, self.run.steps):
                    self.evaluate()
                if self.run.sample_every and self.step % self.run.sample_every == 0:
                    self.write_samples(self.step)
                if self.run.checkpoint_every and self.step % self.run.checkpoint_every == 0:
                    self.save()
                bar.update(self.step, {**shown, **self.scores} if self.scores else shown)
        self.save()
        self.write_samples(None)
        return last

    def evaluate(self) -> dict[str, float]:
        """Score the current model (rank 0), log the scores and keep the best model if it is."""
        self.check_losses()
        if not self.main or self.evaluator is None:
            return {}
        self.scores = self.evaluator(self.model, self.data, self.run.seed, self.device)
        self._log({"step": self.step, "eval": self.scores})
        best = self.evaluator.best
        if best is not None:
            if best.key not in self.scores:
                raise ConfigError(f"--keep-best {best.key}: '{best.metric}' gives {', '.join(self.scores)}; name one of them")
            if best.improves(self.scores[best.key]) and self.out_dir is not None:
                self._check_finite()
                checkpoint.save(self.model, self.out_dir / BEST_FILE, self.step)
                best.value, best.step = self.scores[best.key], self.step
        return self.scores

    # ---- files -------------------------------------------------------------------------

    def _start(self) -> None:
        """A new run: seed, check the directory, start the metrics log and write the step-0 checkpoint."""
        torch.manual_seed(self.run.seed + self.dist.rank)  # each rank draws its own noise
        if self.out_dir is None:
            return
        if holds_checkpoint(self.out_dir):
            raise ConfigError(
                f"{self.out_dir} already holds a run: pass --resume to continue it, or choose another --out"
            )
        self.dist.barrier()  # every rank has checked before rank 0 writes
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.remove_leftovers(self.out_dir)
            checkpoint.write_atomic(self.out_dir / METRICS_FILE, b"")
        self.save()  # step 0: a run killed before its first checkpoint still resumes

    def _log(self, entry: dict[str, Any]) -> None:
        if self.out_dir is None or not self.main:
            return
        with open(self.out_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        if self.tensorboard is not None:
            values = entry.get("eval") or {k: v for k, v in entry.items() if k not in ("step", "elapsed_s")}
            self.tensorboard.scalars(entry["step"], values, "eval" if "eval" in entry else "train")

    def write_samples(self, step: int | None) -> Path | None:
        """A picture of samples from fixed noise (BatchNorm in eval mode; the RNGs are untouched)."""
        if self.out_dir is None or not self.main:
            return None
        from igm.images import save_samples

        info = self.model.data
        n = self.run.num_samples or (64 if info.kind == "image" else 2000)
        gen = torch.Generator().manual_seed(self.preview_noise_seed)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            x = self.model.generator.sample(n, generator=gen).cpu()
        self.model.train(was_training)
        name = "samples.png" if step is None else f"{SAMPLES_DIR}/step_{step:07d}.png"
        reference = torch.tensor(info.extra["means"]) if "means" in info.extra else None
        path = save_samples(x, info.kind, self.out_dir / name, reference=reference, value_range=info.value_range)
        if self.tensorboard is not None:
            self.tensorboard.picture(self.step, path)
        return path

    def _rank_state(self) -> dict[str, Tensor]:
        """This rank's RNG states and data-stream position."""
        state = {"rng.torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        state.update({f"data.{k}": v for k, v in self.stream.state_dict().items()})
        return state

    def state_tensors(self) -> tuple[dict[str, Tensor], dict[str, str]]:
        """Optimizer states and every rank's RNG and data state (a collective when distributed)."""
        tensors: dict[str, Tensor] = {}
        for key, value in self._rank_state().items():
            for rank, copy in enumerate(self.dist.gather(value)):
                tensors[key if rank == 0 else f"rank{rank}.{key}"] = copy
        meta: dict[str, str] = {
            "igm.step": str(self.step),
            "igm.players": json.dumps([p.name for p in self.players]),
            "igm.world_size": str(self.dist.world_size),
        }
        for player, opt in zip(self.players, self.optimizers):
            opt_tensors, opt_meta = checkpoint.optimizer_state(opt, f"optim.{player.name}")
            tensors.update(opt_tensors)
            meta[f"igm.optim.{player.name}"] = json.dumps(opt_meta)
        return tensors, meta

    def save(self) -> None:
        """Checkpoint the current step (rank 0 writes): ``trainer.safetensors``, then ``model.safetensors``.

        The trainer file alone is the resumable state, so a kill between the two writes loses
        nothing. Non-finite tensors are refused before anything is written.
        """
        if self.out_dir is None:
            return
        self.check_losses()
        self._check_finite()
        tensors, meta = self.state_tensors()
        if not self.main:
            return
        model_tensors = self.model.state_dict()
        model_meta = checkpoint.model_metadata(self.model, self.step)
        tensors.update({MODEL_PREFIX + k: v for k, v in model_tensors.items()})
        meta["igm.trainer_format"] = TRAINER_FORMAT
        meta["igm.model_checkpoint"] = json.dumps(model_meta, sort_keys=True)
        meta["igm.run"] = json.dumps(run_record(self.run), sort_keys=True)
        if self.evaluator is not None and self.evaluator.best is not None:
            meta["igm.best"] = self.evaluator.best.to_json()
        checkpoint.save_tensors(self.out_dir / checkpoint.TRAINER_FILE, tensors, meta)
        self.saved_step = self.step
        checkpoint.save_tensors(self.out_dir / checkpoint.MODEL_FILE, model_tensors, model_meta)

    def _check_finite(self) -> None:
        bad = [k for k, v in self.model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            shown = ", ".join(bad[:3]) + (" ..." if len(bad) > 3 else "")
            raise TrainingError(
                f"the model's tensors became non-finite by step {self.step} ({shown}); "
                f"{self._kept()} lower the learning rate or change the config and retry"
            )

    def restore(self) -> None:
        """Continue the run saved in ``out_dir`` exactly where its last complete checkpoint left it.

        A directory with a run's ``config.toml`` but no checkpoint yet (killed while starting)
        starts again from step 0 with the same seed.
        """
        if self.out_dir is None:
            raise ConfigError("--resume needs --out pointing at the run directory to continue")
        state_path = self.out_dir / checkpoint.TRAINER_FILE
        if not state_path.exists():
            if (self.out_dir / checkpoint.MODEL_FILE).exists():
                raise CheckpointError(
                    f"--resume: {self.out_dir} holds {checkpoint.MODEL_FILE} but no {checkpoint.TRAINER_FILE}, "
                    "so the optimizer and RNG states are lost: start a new run (another --out) from it"
                )
            self._start_over()
            return
        state, state_meta = checkpoint.read_file(state_path)
        try:
            self._restore_from(state, state_meta, state_path)
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"{state_path} is damaged ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}): "
                "the run cannot be resumed exactly; start a new run with another --out"
            ) from None
        self.saved_step = self.step
        if self.main:
            rewind_metrics(self.out_dir / METRICS_FILE, self.step)
            checkpoint.remove_leftovers(self.out_dir)

    def _start_over(self) -> None:
        torch.manual_seed(self.run.seed + self.dist.rank)
        self.dist.barrier()
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.remove_leftovers(self.out_dir)
            checkpoint.write_atomic(self.out_dir / METRICS_FILE, b"")
        self.save()

    def _restore_from(self, state: dict[str, Tensor], state_meta: dict[str, str], state_path: Path) -> None:
        model_path = self.out_dir / checkpoint.MODEL_FILE
        if state_meta.get("igm.trainer_format") == TRAINER_FORMAT:
            metadata = checkpoint.check_metadata(state_path, json.loads(state_meta["igm.model_checkpoint"]))
            tensors = {k[len(MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
        else:  # format 1: the model lives in model.safetensors only, which must be of the same step
            tensors, metadata = checkpoint.read_file(model_path)
            metadata = checkpoint.check_metadata(model_path, metadata)
            if metadata.get("igm.step") != state_meta.get("igm.step"):
                raise CheckpointError(
                    f"{model_path} (step {metadata.get('igm.step')}) and {state_path} (step "
                    f"{state_meta.get('igm.step')}) disagree, and this run predates self-contained trainer "
                    "checkpoints: start a new run"
                )
        saved_world = int(state_meta.get("igm.world_size", "1"))
        if saved_world != self.dist.world_size:
            raise ConfigError(
                f"--resume: {self.out_dir} was trained on {saved_world} process(es); resume it with --nproc {saved_world}"
            )
        self._check_unchanged(metadata, state_meta)
        checkpoint.load_state(self.model, tensors, state_path, metadata)
        step = int(state_meta["igm.step"])
        if step < 0:
            raise ValueError(f"igm.step {step} is negative")
        for player, opt in zip(self.players, self.optimizers):
            checkpoint.load_optimizer_state(
                opt, f"optim.{player.name}", state, json.loads(state_meta[f"igm.optim.{player.name}"])
            )
        prefix = f"rank{self.dist.rank}." if self.dist.rank else ""  # rank 0's keys carry no prefix
        self.stream.load_state_dict({k: state[f"{prefix}data.{k}"] for k in self.stream.state_dict()})
        position = self.stream.state_dict()
        next(self.stream)  # a damaged position (indices out of range, say) fails here, not mid-run
        self.stream.load_state_dict(position)
        torch.set_rng_state(state[f"{prefix}rng.torch"])
        if f"{prefix}rng.cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state[f"{prefix}rng.cuda"], self.device)
        self.step = step
        if self.evaluator is not None and self.evaluator.best is not None and "igm.best" in state_meta:
            self.evaluator.best.restore(state_meta["igm.best"])
        if self.main and _file_step(model_path) != step:  # killed between the two writes: finish the pair
            checkpoint.save_tensors(model_path, tensors, metadata)

    def _check_unchanged(self, metadata: dict[str, str], state_meta: dict[str, str]) -> None:
        """ConfigError when what is resumed is not what was checkpointed (an edited config.toml, say)."""
        from igm import config as cfg

        pairs = [("model", metadata["igm.model"], self.model.name),
                 ("data", json.loads(metadata["igm.data"]).get("name"), self.model.data.name)]
        saved_run = json.loads(state_meta.get("igm.run", "null"))
        if saved_run is not None:  # settings added since the run was saved had their defaults then
            saved_run = {**run_record(RunConfig()), **saved_run}
        saved_config = cfg.as_stored_then(type(self.model.config), json.loads(metadata["igm.config"]))
        for saved, now in ((saved_config, cfg.to_dict(self.model.config)),
                           (saved_run, run_record(self.run))):
            if saved is not None:
                pairs += [(k, saved.get(k, _ABSENT), now.get(k)) for k in sorted(set(saved) | set(now))]
        pairs = [(key, old, new) for key, old, new in pairs if (None if old is _ABSENT else old) != new]
        added = [f"{key} = {new!r}" for key, old, new in pairs if old is _ABSENT]
        if added:  # the file predates a setting that is now set: what the older igm did there is not known here
            raise ConfigError(
                f"--resume: the run was written by an older igm that did not have the setting {'; '.join(added[:4])} "
                "(its value now): finish the run with the igm that started it, or start a new run"
            )
        diffs = [f"{key} {old!r} -> {new!r}" for key, old, new in pairs]
        if diffs:
            raise ConfigError(
                f"--resume: the run's settings differ from its checkpoint ({'; '.join(diffs[:4])}): "
                "a resumed run keeps its settings; restore config.toml or start a new run"
            )


_ABSENT = object()  # a setting that a checkpoint's stored config does not name


def run_record(run: RunConfig) -> dict[str, Any]:
    """The run settings that shape the trained tensors, which a resumed run must keep."""
    return {"batch_size": run.batch_size, "seed": run.seed, "lr_decay": run.lr_decay, "precision": run.precision,
            "compile": run.compile}


def deterministic_cuda() -> None:
    """Deterministic cuDNN and cuBLAS choices, so that a resumed CUDA run repeats an unbroken one.

    Ops that PyTorch has no deterministic kernel for warn once instead of failing. The cuBLAS
    workspace setting only takes effect when it is set before CUDA starts (igm sets it at import).
    """
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def place_stream(stream: Any, device: torch.device) -> bool:
    """Move a stream's data onto ``device`` when it can and fits; True when its batches are drawn there."""
    to_device = getattr(stream, "to_device", None)
    return bool(to_device(device)) if to_device is not None else device.type == "cpu"


def holds_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` holds a checkpoint (a run to resume rather than overwrite)."""
    return any((directory / name).exists() for name in (checkpoint.TRAINER_FILE, checkpoint.MODEL_FILE))


def _file_step(path: Path) -> int | None:
    try:
        return int(checkpoint.read_file(path, tensors=False)[1].get("igm.step", ""))
    except (CheckpointError, ValueError):
        return None
