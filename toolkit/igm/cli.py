"""The ``igm`` command: list, fit, sample, eval, info, plot.

Only typer and the standard library are imported at module level: ``igm --help`` answers
without importing torch. Every command turns an :class:`igm.errors.IgmError` into one line on
stderr and its exit status (2 for bad input); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from igm.errors import ConfigError, IgmError

app = typer.Typer(
    name="igm",
    help="Train, sample and evaluate implicit and semi-implicit generative models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
F = TypeVar("F", bound=Callable[..., Any])
KINDS = ("models", "divergences", "datasets", "metrics", "trainers", "plugins")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Show an IgmError, or a file the system would not read or write, as one line and exit with its status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IgmError as exc:
            fail(one_line(str(exc)), exc.exit_code)
        except OSError as exc:  # a path the user gave: missing, read-only, a directory, a full disk
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"cannot use{where}: {exc.strerror or exc}; check the path, its permissions and the free space")

    return wrapper  # type: ignore[return-value]


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters (newlines, terminal escapes) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


# ---- igm list ----------------------------------------------------------------------------


@app.command("list")
@user_errors
def list_(
    kind: Optional[str] = typer.Argument(None, help=f"One of: {', '.join(KINDS)} (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the installed models, divergences, data sources, metrics, trainers and plugins."""
    from igm.errors import did_you_mean
    from igm.registry import get_registry

    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown list '{kind}'{did_you_mean(kind, KINDS)}: choose one of {', '.join(KINDS)}")
    registry = get_registry()
    plugins = list(registry.plugins.infos.values())
    kinds = [kind] if kind else list(KINDS)
    if as_json:
        out: dict[str, Any] = {}
        for k in kinds:
            if k == "plugins":
                out[k] = [p.to_json() for p in plugins]
            else:
                out[k] = [
                    {"name": c.name, "plugin": c.plugin.name, "distribution": c.plugin.dist, "summary": c.summary}
                    for c in (registry.components[k][n] for n in registry.names(k))
                ]
        _json(out if kind is None else out[kind])
        return
    for k in kinds:
        typer.echo(f"{k}:")
        if k == "plugins":
            for p in plugins:
                status = "disabled" if p.disabled else ("ERROR" if p.error else "ok")
                dist = f"{p.dist or '(inline)'} {p.version or ''}".strip()
                typer.echo(f"  {p.name:<14} {dist:<26} {status}")
                if p.hooks:
                    typer.echo(f"      hooks: {', '.join(p.hooks)}")
                if p.registered:
                    typer.echo(f"      registered: {', '.join(f'{n} ({kk})' for kk, n in p.registered)}")
                if p.error:
                    typer.echo(f"      error: {p.error}")
            continue
        names = registry.names(k)
        if not names:
            typer.echo("  (none)")
        for name in names:
            comp = registry.components[k][name]
            typer.echo(f"  {name:<16} {comp.summary}  [{comp.plugin.name}]")
    broken = [p for p in plugins if p.error]
    if broken and kind != "plugins":
        for p in broken:
            typer.echo(f"warning: plugin '{p.name}' ({p.dist or p.module}) failed: {p.error}", err=True)


# ---- igm fit -----------------------------------------------------------------------------




@app.command()
@user_errors
def fit(
    model: Optional[str] = typer.Argument(None, help="Model name (see 'igm list models'); may come from --config."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source, e.g. grid25, digits, mnist:PATH, npz:PATH."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (rounds over the players)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Examples per batch."),
    config_file: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file with [run] and [model] tables."),
    sets: Optional[list[str]] = typer.Option(None, "--set", "-s", help="Model config key=value (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/MODEL)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed of the run."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    trainer: Optional[str] = typer.Option(None, "--trainer", help="Registered trainer (default: default)."),
    lr_decay: Optional[str] = typer.Option(
        None, "--lr-decay", help="Learning-rate schedule: none, cosine or linear (to 0 at the last step)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Score the model every N steps (and at the end)."),
    eval_metrics: Optional[list[str]] = typer.Option(None, "--metric", "-m", help="Metric to run during training (repeatable)."),
    eval_n: Optional[int] = typer.Option(None, "--eval-n", help="Samples per score during training (default: the metric's)."),
    keep_best: Optional[str] = typer.Option(
        None, "--keep-best", help="Keep best.safetensors by a score METRIC.KEY[:min|:max], e.g. modes.modes."
    ),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Write TensorBoard events to DIR/tensorboard."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 (default) or bf16 (autocast)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile each player's loss."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="CPU threads per process (default: all cores, or cores / processes with --nproc)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    nproc: int = typer.Option(1, "--nproc", help="Data-parallel worker processes on this machine (torchrun)."),
    backend: str = typer.Option("auto", "--backend", help="Distributed backend: auto (nccl on CUDA, else gloo), gloo, nccl."),
) -> None:
    """Train MODEL on a data source; writes a checkpoint, metrics.jsonl and sample pictures."""
    import os

    for name, value in (("--steps", steps), ("--batch-size", batch_size), ("--nproc", nproc), ("--eval-every", eval_every),
                        ("--eval-n", eval_n), ("--threads", threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    if backend not in ("auto", "gloo", "nccl"):
        raise ConfigError(f"unknown --backend '{backend}': use auto, gloo or nccl")
    if backend == "nccl" and not _cuda_available():
        raise ConfigError("--backend nccl needs CUDA GPUs, and none is available here: use --backend gloo (or auto)")
    flags = {
        "steps": steps, "batch_size": batch_size, "seed": seed, "device": device, "trainer": trainer, "lr_decay": lr_decay,
        "eval_every": eval_every, "eval_metrics": eval_metrics or None, "eval_n": eval_n, "keep_best": keep_best,
        "tensorboard": tensorboard or None, "precision": precision, "compile": compile_ or None,
    }
    args = dict(model=model, data=data, config_file=config_file, sets=sets or [], out=out, resume=resume, flags=flags)
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from igm.distributed import launch
        from igm.runs import plan_fit

        from igm.rundir import INHERITED_LOCK_ENV, RunLock

        plan = plan_fit(**args)  # bad input fails here, once, before any worker starts
        backend = _check_devices(nproc, plan.run.device, backend)
        worker = _worker_argv(args, plan.out, quiet, backend) + ([] if threads is None else ["--threads", str(threads)])
        with RunLock(plan.out):  # the launcher holds the run's lock; its workers inherit it
            os.environ[INHERITED_LOCK_ENV] = str(plan.out.resolve())
            raise typer.Exit(launch(nproc, worker))
    from igm import distributed
    from igm.runs import fit_run

    distributed.set_threads(threads)
    ctx = distributed.init_from_env(backend)
    try:
        fit_run(**args, progress=not quiet, echo=lambda line: typer.echo(line, err=True), dist=ctx)
    except BaseException as exc:
        distributed.shutdown(ctx, clean=False)
        if not isinstance(exc, typer.Exit) and distributed.report_worker_error(exc, ctx):
            raise typer.Exit(exc.exit_code if isinstance(exc, IgmError) else 1) from None
        raise
    distributed.shutdown(ctx)
    if ctx.enabled:
        distributed.exit_worker(0)


def _check_devices(nproc: int, device: str, backend: str) -> str:
    """The backend for ``nproc`` local ranks on ``device``; ConfigError when there are fewer GPUs than ranks."""
    import torch

    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not on_cuda:
        if backend == "nccl":
            raise ConfigError("--backend nccl runs on GPUs, but this run is on the CPU: use --backend gloo (or auto)")
        return "gloo"
    visible = torch.cuda.device_count()
    if visible < nproc:
        raise ConfigError(
            f"--nproc {nproc} needs {nproc} GPUs and {visible} is visible: use --nproc {max(1, visible)}, "
            f"or --device cpu for {nproc} CPU ranks"
        )
    return backend


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


FLAG_OPTIONS = {"eval_metrics": "--metric"}  # run settings whose option is not --setting-name


def _worker_argv(args: dict[str, Any], out: Path, quiet: bool, backend: str) -> list[str]:
    """The ``igm fit`` command line each worker runs (the same run, with --out fixed)."""
    argv = ["fit"] + ([args["model"]] if args["model"] else [])
    if args["data"]:
        argv += ["--data", args["data"]]
    if args["config_file"]:
        argv += ["--config", str(args["config_file"])]
    for pair in args["sets"]:
        argv += ["--set", pair]
    for key, value in args["flags"].items():
        option = FLAG_OPTIONS.get(key, f"--{key.replace('_', '-')}")
        if value is True:
            argv.append(option)
        elif isinstance(value, list):
            for item in value:
                argv += [option, str(item)]
        elif value is not None:
            argv += [option, str(value)]
    argv += ["--out", str(out), "--backend", backend] + (["--resume"] if args["resume"] else [])
    return argv + (["--quiet"] if quiet else [])


# ---- igm sample / eval / info ------------------------------------------------------------


@app.command()
@user_errors
def sample(
    checkpoint: Path = typer.Argument(..., help="A model.safetensors written by igm."),
    n: int = typer.Option(64, "-n", help="Number of samples."),
    out: Path = typer.Option(Path("samples.png"), "--out", "-o", help="PNG picture, or .npy / .safetensors tensors."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the draw."),
    label: Optional[str] = typer.Option(None, "--label", help="Class label for a conditional model (as in the data)."),
    per_class: Optional[int] = typer.Option(None, "--per-class", help="Conditional model: a PNG grid, one row per class."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
) -> None:
    """Draw samples from a checkpoint into a picture or a tensor file."""
    from igm.runs import sample_to_file

    for name, value in (("-n", n), ("--per-class", per_class)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    path = sample_to_file(checkpoint, n, out, seed=seed, label=label, device=device, per_class=per_class)
    typer.echo(f"wrote samples to {path}")


@app.command("eval")
@user_errors
def eval_(
    checkpoint: Path = typer.Argument(..., help="A model.safetensors written by igm."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the one it trained on)."),
    metrics: Optional[list[str]] = typer.Option(None, "--metric", "-m", help="Metric name (repeatable)."),
    n: Optional[int] = typer.Option(None, "-n", help="Generated samples per metric (default: the metric's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the draw."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score a checkpoint with one or more metrics."""
    from igm.runs import evaluate

    if n is not None and n < 1:
        raise ConfigError(f"-n must be a positive integer, got {n}")
    results = evaluate(checkpoint, data, metrics or [], n=n, seed=seed, echo=lambda line: typer.echo(line, err=True))
    if as_json:
        _json(results)
        return
    for metric, values in results.items():
        typer.echo(f"{metric}:")
        for key, value in values.items():
            shown = f"{value:.4f}" if isinstance(value, float) else ("n/a" if value is None else str(value))
            typer.echo(f"  {key:<16} {shown}")


@app.command()
@user_errors
def info(
    checkpoint: Path = typer.Argument(..., help="A model.safetensors written by igm."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what a checkpoint holds: model, plugin, versions, config, data and tensors."""
    from igm.runs import describe_checkpoint

    desc = describe_checkpoint(checkpoint)
    if as_json:
        _json(desc)
        return
    for key in ("model", "plugin", "igm_version", "format", "step"):
        typer.echo(f"{key:<12} {one_line(str(desc[key]))}")
    typer.echo(f"{'data':<12} {json.dumps(desc['data'])}")  # JSON escapes control characters itself
    typer.echo("config:")
    for key, value in desc["config"].items():
        typer.echo(f"  {one_line(str(key)):<16} {json.dumps(value)}")
    typer.echo("tensors:")
    for group, count in desc["parameters"].items():
        typer.echo(f"  {one_line(group):<16} {count:,} values")


@app.command()
@user_errors
def plot(
    runs: list[Path] = typer.Argument(..., help="Run directories written by igm fit."),
    out: Path = typer.Option(Path("curves.png"), "--out", "-o", help="The PNG to write."),
) -> None:
    """Draw the loss curves and scores of one or more runs, overlaid, into a PNG."""
    from igm.plots import plot_runs

    typer.echo(f"wrote {plot_runs(runs, out)}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: a usage error (a bad flag or value) is one line too, exit 2."""
    command = typer.main.get_command(app)
    try:
        status = command.main(args=argv, prog_name="igm", standalone_mode=False)
    except Exception as exc:  # click's exceptions (typer may vendor click, so matched by name)
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "NoArgsIsHelpError" in kinds:
            typer.echo(exc.format_message())  # type: ignore[attr-defined]
            sys.exit(0)
        if "ClickException" in kinds:
            ctx = getattr(exc, "ctx", None)
            where = f"igm {ctx.info_name} --help" if ctx is not None and ctx.info_name != "igm" else "igm --help"
            typer.echo(f"Error: {one_line(exc.format_message())}; see {where}", err=True)  # type: ignore[attr-defined]
            sys.exit(getattr(exc, "exit_code", 2))
        if "Abort" in kinds:
            typer.echo("Error: interrupted", err=True)
            sys.exit(130)
        raise
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
