"""What the CLI's commands do, as functions: fit a run, sample, evaluate, describe a checkpoint.

A run directory holds ``config.toml`` (the resolved ``[run]`` and ``[model]`` tables: repeat the
run with ``igm fit --config DIR/config.toml``), ``metrics.jsonl``, ``model.safetensors``,
``trainer.safetensors``, ``samples.png`` and ``samples/`` frames. Settings resolve as
defaults < the model's suggestions for the data < the TOML file < command-line flags and ``--set``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from igm import checkpoint
from igm import config as cfg
from igm.data import DataInfo, DataSource, describe, open_data, reopen_data
from igm.distributed import SINGLE, DistContext
from igm.errors import CheckpointError, ConfigError
from igm.limits import check_allocation
from igm.models import Model, instantiate
from igm.registry import get_registry
from igm.rundir import RunLock
from igm import plots
from igm.tracking import BEST_FILE, TENSORBOARD_DIR, Evaluator, require_tensorboard
from igm.trainer import METRICS_FILE, RunConfig, holds_checkpoint

CONFIG_FILE = "config.toml"


def default_out(model: str) -> Path:
    """``runs/MODEL``, or ``runs/MODEL-2``, ... when that already holds something."""
    base = out = Path("runs") / model
    i = 1
    while out.exists() and any(out.iterdir()):
        i += 1
        out = base.with_name(f"{model}-{i}")
    return out


def _tables(doc: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The [run] and [model] tables of a config file ([distributed] is informational)."""
    unknown = sorted(set(doc) - {"run", "model", "distributed"})
    if unknown:
        raise ConfigError(f"{source}: unknown table or key {', '.join(unknown)}; use [run] and [model] tables")
    for name in ("run", "model", "distributed"):
        if not isinstance(doc.get(name, {}), dict):
            raise ConfigError(f"{source}: '{name}' must be a table ([{name}]), not a {type(doc[name]).__name__}")
    run, model = dict(doc.get("run", {})), dict(doc.get("model", {}))
    for key in ("model", "data", "trainer"):
        if key in run and not isinstance(run[key], str):
            raise ConfigError(f"{source}: [run] {key} must be a string, e.g. {key} = \"...\"")
    return run, model


def check_out_dir(out: Path) -> None:
    """ConfigError unless ``out`` can be a run directory: a directory (or nothing yet), named in UTF-8."""
    try:
        str(out).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"--out {out!s:.80} is not a UTF-8 name: choose a directory name in UTF-8") from None
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == out else f"lies under {parent}, which is a file"
                raise ConfigError(f"--out {out} {what}: give a directory for the run")
            break


@dataclass
class FitPlan:
    """A checked, built run: everything ``igm fit`` needs before it writes anything."""

    model_name: str
    data_spec: str
    trainer_name: str
    run: RunConfig
    source: DataSource
    model: Model
    out: Path
    resume: bool


def plan_fit(
    model: str | None,
    data: str | None,
    config_file: Path | None = None,
    sets: list[str] | None = None,
    out: Path | None = None,
    resume: bool = False,
    flags: dict[str, Any] | None = None,
) -> FitPlan:
    """Resolve and check every setting, load the data and build the model; write nothing."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    overrides = cfg.parse_sets(sets)
    if out is not None:
        check_out_dir(Path(out))
        if os.environ.get("RANK", "0") == "0":  # other ranks of a torchrun job find rank 0 holding it
            RunLock(Path(out)).check_free()  # a directory another run is writing is refused first, naming that run
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out DIR: the run directory to continue")
        saved = Path(out) / CONFIG_FILE
        if not saved.is_file():
            raise ConfigError(f"--resume: {out} holds no run to continue; drop --resume to start a new run")
        run_tbl, model_tbl = _tables(cfg.read_toml(saved), str(saved))
        changed = [k for k in ("batch_size", "seed", "trainer", "lr_decay") if k in flags and flags[k] != run_tbl.get(k)]
        changed += [k for k, v in (("model", model), ("data", data)) if v is not None and v != run_tbl.get(k)]
        if changed or overrides or config_file:
            what = ", ".join(changed) or ("--set" if overrides else "--config")
            raise ConfigError(f"--resume continues a run as it was configured; cannot change {what} (only --steps, --device)")
    else:
        run_tbl, model_tbl = _tables(cfg.read_toml(config_file), str(config_file)) if config_file else ({}, {})
    run_tbl.update({k: v for k, v in (("model", model), ("data", data)) if v is not None})
    run_tbl.update(flags)
    model_name, data_spec = run_tbl.pop("model", None), run_tbl.pop("data", None)
    trainer_name = run_tbl.pop("trainer", "default")
    if not model_name:
        raise ConfigError("name a model to train: igm fit MODEL --data SOURCE (see 'igm list models')")
    if not data_spec:
        raise ConfigError(f"name a data source: igm fit {model_name} --data SOURCE (see 'igm list datasets')")
    registry = get_registry()
    model_cls = registry.get("models", model_name)
    registry.get("trainers", trainer_name)
    seed = cfg.build(RunConfig, {"seed": run_tbl.get("seed", 0)}, what="run").seed
    source = open_data(data_spec, seed)
    run = cfg.build(RunConfig, {**model_cls.run_defaults(source.info), **run_tbl}, what="run")
    out = Path(out) if out is not None else default_out(model_name)
    check_out_dir(out)
    torch.manual_seed(run.seed)  # network initialisation is part of the seeded run
    if resume:  # a config.toml written before a setting existed means what that igm did
        model_tbl = cfg.as_stored_then(model_cls.Config, model_tbl)
    model_config = cfg.build(model_cls.Config, {**model_tbl, **overrides}, what=f"'{model_name}' model config")
    net = instantiate(model_cls, model_config, source.info, model_name)
    for player in net.players():  # optimizer settings (rates, betas) are checked by building them
        try:
            player.make_optimizer()
        except ValueError as exc:
            raise ConfigError(
                f"'{model_name}' model config: the {player.name} optimizer refuses it ({exc}): "
                "check the learning rates, betas and momentum in --set/--config"
            ) from None
    if run.eval_metrics or run.keep_best:  # names, applicability and the best-score spec, before anything runs
        Evaluator(run.eval_metrics, run.eval_every, run.eval_n, run.keep_best).check(net, source)
    if run.tensorboard:
        require_tensorboard()
    if run.num_samples:
        check_allocation(run.num_samples * math.prod(source.info.event_shape) * 4, f"num_samples={run.num_samples} preview samples", "use fewer")
    if not resume and holds_checkpoint(out):
        raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    return FitPlan(model_name, data_spec, trainer_name, run, source, net, out, resume)


def run_plan(
    plan: FitPlan, progress: bool = True, dist: DistContext = SINGLE, echo: Callable[[str], None] = print
) -> Path:
    """Train (or resume) a planned run; rank 0 alone writes and talks. Returns the run directory."""
    out, run = plan.out, plan.run
    trainer_cls = get_registry().get("trainers", plan.trainer_name)
    trainer = trainer_cls(plan.model, plan.source, run, out, progress=progress, dist=dist)  # fails before writing
    lock = RunLock(out)
    if dist.is_main:
        lock.acquire()  # one writer per run directory, from here to the end of the run
    try:
        return _run_locked(plan, trainer, dist, echo)
    finally:
        lock.release()


def _run_locked(plan: FitPlan, trainer: Any, dist: DistContext, echo: Callable[[str], None]) -> Path:
    out, run = plan.out, plan.run
    if dist.is_main and not plan.resume and holds_checkpoint(out):  # another run got here first
        raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    if plan.resume and hasattr(trainer, "begin"):
        trainer.begin(resume=True)  # a damaged or edited run fails here, before anything is printed or written
    dist.barrier()  # every rank has checked the run directory before rank 0 writes into it
    say = echo if dist.is_main else (lambda line: None)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        resolved = {
            "run": {"model": plan.model_name, "data": plan.data_spec, "trainer": plan.trainer_name, **cfg.to_dict(run)},
            "model": cfg.to_dict(plan.model.config),
            "distributed": {
                "world_size": dist.world_size,
                "batch_size_per_rank": run.batch_size,
                "global_batch_size": run.batch_size * dist.world_size,
                "backend": dist.backend or "none",
            },
        }
        checkpoint.write_atomic(
            out / CONFIG_FILE,
            cfg.to_toml(resolved, header=f"igm run; repeat it with: igm fit --config {out / CONFIG_FILE}").encode(),
        )
    batch = f"batch {run.batch_size}" + (
        f" per rank x {dist.world_size} ranks = {run.batch_size * dist.world_size}" if dist.enabled else ""
    )
    say(
        f"{'resuming' if plan.resume else 'training'} {plan.model_name} on {plan.data_spec}: {run.steps} steps, "
        f"{batch}, seed {run.seed}, {trainer.device} -> {out}"
    )
    say(describe(plan.source))
    if getattr(trainer, "plan_note", None):  # a run shorter than the family needs (Model.plan)
        say(trainer.plan_note)
    t0 = time.perf_counter()
    last = trainer.fit(resume=plan.resume)
    wall = time.perf_counter() - t0
    written = [checkpoint.MODEL_FILE, checkpoint.TRAINER_FILE, METRICS_FILE, "samples.png"]
    if dist.is_main and plots.available():
        plots.plot_runs([out], out / plots.CURVES_FILE)
        written.append(plots.CURVES_FILE)
    evaluator = getattr(trainer, "evaluator", None)
    if evaluator is not None and evaluator.best is not None and evaluator.best.step is not None:
        written.append(f"{BEST_FILE} (step {evaluator.best.step})")
    if run.tensorboard:
        written.append(f"{TENSORBOARD_DIR}/")
    say(summary(trainer.step, wall, last, getattr(trainer, "scores", {}), out, written))
    return out


def summary(step: int, wall: float, last: dict[str, Any], scores: dict[str, float], out: Path, written: list[str]) -> str:
    """The paragraph ``igm fit`` ends with: steps, wall time, last losses and scores, what was written where."""
    losses = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("step", "elapsed_s", "steps_per_s"))
    minutes, seconds = divmod(round(wall), 60)
    lines = [f"done: step {step} in {minutes}m{seconds:02d}s" + (f"; last losses {losses}" if losses else "")]
    if scores:
        lines.append("scores: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    lines.append(f"wrote {out}/: {', '.join(written)}")
    if not plots.available():
        lines.append("(pip install 'igm-toolkit[plot]' for curves.png; igm plot draws runs side by side)")
    return "\n".join(lines)


def fit_run(
    model: str | None,
    data: str | None,
    config_file: Path | None = None,
    sets: list[str] | None = None,
    out: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    flags: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    dist: DistContext = SINGLE,
) -> Path:
    """Plan and run ``igm fit`` in this process (one rank of a distributed run when ``dist`` says so)."""
    plan = plan_fit(model, data, config_file, sets, out, resume, flags)
    return run_plan(plan, progress, dist, echo)


def _generator_seed(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sample_to_file(
    path: Path,
    n: int,
    out: Path,
    seed: int = 0,
    label: int | str | None = None,
    device: str = "cpu",
    per_class: int | None = None,
) -> Path:
    """Draw ``n`` samples from a checkpoint into a PNG, ``.npy`` or ``.safetensors`` file.

    With ``per_class``, a conditional model's samples go to a PNG grid with one row per class.
    """
    from igm.trainer import resolve_device

    suffix = out.suffix.lower()
    if suffix not in (".png", ".npy", ".safetensors"):
        raise ConfigError(f"--out {out}: use a .png, .npy or .safetensors file name")
    if out.exists() and out.suffix.lower() == ".safetensors":
        try:
            holds_checkpoint = "igm.step" in checkpoint.read_file(out, tensors=False)[1]
        except CheckpointError:
            holds_checkpoint = False
        if holds_checkpoint:
            raise ConfigError(f"--out {out} is an igm checkpoint or trainer state; choose another file name")
    model = checkpoint.load(path, resolve_device(device))
    check_allocation(
        n * math.prod(model.data.event_shape) * 4, f"{n:,} samples of shape {tuple(model.data.event_shape)}", "draw fewer with -n"
    )
    gen = model.generator
    extra = model.data.extra
    reference = torch.tensor(extra["means"]) if "means" in extra else None
    if per_class is not None:
        from igm.images import save_class_grid

        if gen.num_classes is None:
            raise ConfigError(f"{path} holds an unconditional model: drop --per-class")
        if suffix != ".png" or label is not None:
            raise ConfigError("--per-class writes a PNG grid of every class: use a .png --out and no --label")
        return save_class_grid(
            gen, per_class, model.data.kind, out, reference, model.data.value_range, _generator_seed(seed),
            class_labels=model.data.labels(),
        )
    labels = None
    if label is not None:
        if gen.num_classes is None:
            raise ConfigError(f"{path} holds an unconditional model: drop --label")
        labels = torch.full((n,), model.data.class_index(label), dtype=torch.long)  # the user's label -> its class
    x = sample_in_chunks(gen, n, labels, _generator_seed(seed))
    if suffix == ".png":
        from igm.images import save_samples

        return save_samples(x, model.data.kind, out, reference=reference, value_range=model.data.value_range)
    if suffix == ".npy":
        import io

        import numpy as np

        buf = io.BytesIO()
        np.save(buf, x.numpy(), allow_pickle=False)
        checkpoint.write_atomic(out, buf.getvalue())
        return out
    return checkpoint.save_tensors(out, {"samples": x}, {"igm.source": str(path)})


SAMPLE_CHUNK = 65_536


def sample_in_chunks(gen: Any, n: int, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """``gen.sample(n)`` on the CPU, drawn ``SAMPLE_CHUNK`` at a time so that memory holds the output only.

    Up to ``SAMPLE_CHUNK`` samples this is one call (the same draw as ``gen.sample`` itself).
    """
    chunks = []
    with torch.inference_mode():
        for start in range(0, n, SAMPLE_CHUNK):
            part = None if labels is None else labels[start : start + SAMPLE_CHUNK]
            chunks.append(gen.sample(min(SAMPLE_CHUNK, n - start), labels=part, generator=generator).cpu())
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def applies(metric: Any, info: DataInfo, model: Model) -> bool:
    """Whether ``metric`` can score ``model`` on data ``info`` (``applies_to_model`` is optional)."""
    return metric.applies_to(info) and getattr(metric, "applies_to_model", lambda _: True)(model)


def evaluate(
    path: Path,
    data: str | None,
    metrics: list[str],
    n: int | None = None,
    seed: int = 0,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict[str, Any]:
    """Score a checkpoint; with no metric named, every registered metric that applies to its data.

    The data is the checkpoint's own unless ``data`` names another source (found again from
    any directory through the resolved path it stored); ``echo`` hears what was read and run.
    """
    registry = get_registry()
    chosen = [(m, registry.get("metrics", m)) for m in metrics]  # a misspelt name fails before any work
    model = checkpoint.load(path)
    source = open_data(data, seed) if data else reopen_data(model.data, seed)
    echo(describe(source))
    if not metrics:
        metrics = [m for m in registry.names("metrics") if applies(registry.get("metrics", m), source.info, model)]
        if not metrics:
            raise ConfigError(f"no metric applies to '{source.info.name}': name one with --metric (see 'igm list metrics')")
        echo(f"running metrics: {', '.join(metrics)}")
        chosen = [(m, registry.get("metrics", m)) for m in metrics]
    return {name: metric(model, source, n=n, seed=seed) for name, metric in chosen}


def describe_checkpoint(path: Path) -> dict[str, Any]:
    """Metadata and tensor counts of a checkpoint, read without building the model."""
    from safetensors import safe_open

    meta = checkpoint.read_metadata(path)
    step, data, config = int(meta.get("igm.step", 0)), json.loads(meta["igm.data"]), json.loads(meta["igm.config"])
    counts: dict[str, int] = {}
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            numel = 1
            for dim in fh.get_slice(key).get_shape():
                numel *= dim
            group = key.split(".", 1)[0]
            counts[group] = counts.get(group, 0) + numel
    return {
        "model": meta["igm.model"],
        "plugin": f"{meta.get('igm.plugin', '?')} {meta.get('igm.plugin_version', '')}".strip(),
        "igm_version": meta.get("igm.version", "?"),
        "format": meta["igm.format"],
        "step": step,
        "data": data,
        "config": config,
        "parameters": counts,
    }
