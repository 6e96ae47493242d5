"""Checkpoints: one ``.safetensors`` file per model, plus the trainer's state beside it.

Model file (``model.safetensors``): every tensor of the model under its ``state_dict`` name
(``generator.*``, ``critic.*``, buffers, persistent chains) and string metadata:

=====================  ===========================================================
``igm.format``         format version (``FORMAT_VERSION``)
``igm.model``          registered model name, resolved through the registry only
``igm.plugin``         distribution that registered the model, ``igm.plugin_version``
``igm.version``        igm version that wrote the file
``igm.config``         the resolved model config as JSON
``igm.data``           the data description (:class:`igm.data.DataInfo`) as JSON
``igm.step``           training step at which it was written
=====================  ===========================================================

Loading never runs code named by the file: the model name must be a registered name, the
config is checked against the model's config dataclass and the tensors load strictly.
Trainer state (``trainer.safetensors``): optimizer states, data-stream position and every
RNG state, for exact resume. Both are written atomically (temporary file, then rename).
No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes
from torch import Tensor

from igm import config as cfg
from igm.errors import CheckpointError, ConfigError, DataError, UnknownNameError
from igm.registry import NAME, get_registry

if TYPE_CHECKING:
    from igm.models import Model

FORMAT_VERSION = "2"  # what igm writes; CHANGELOG.md and docs/checkpoints.md say what each version changed
READABLE_FORMATS = ("1", "2")  # 2: a 28x28 network=dcgan file holds the standard layout (in 1 it may not)
DIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.safetensors"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file named for this process (two writers never share one), are
    flushed to disk, and replace ``path`` in one rename; the directory is synced so the rename
    survives a power cut. A failed write (a full disk, Ctrl-C) removes its temporary file and
    leaves ``path`` as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)


def sync_dir(path: Path) -> None:
    """fsync a directory, so that renames inside it are on disk (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_leftovers(directory: Path) -> list[Path]:
    """Delete the temporary files of interrupted writes in ``directory`` (call it holding the run's lock)."""
    removed = []
    for tmp in directory.glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def save_tensors(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> Path:
    """Save tensors (moved to CPU, contiguous, shared storage untied) with string metadata, atomically."""
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        t = tensor.detach().to("cpu").contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    path = Path(path)
    write_atomic(path, save_bytes(out, metadata=metadata))
    return path


def read_file(path: str | Path, tensors: bool = True) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors (unless ``tensors=False``) and metadata of a safetensors file; one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: give the path of a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            loaded = {key: fh.get_tensor(key) for key in fh.keys()} if tensors else {}
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated: use another checkpoint"
        ) from None
    return loaded, metadata


def model_metadata(model: Model, step: int | None = None) -> dict[str, str]:
    from igm import __version__

    if not isinstance(model.name, str) or not NAME.match(model.name):
        raise TypeError(
            f"{type(model).__name__} has no registered name ({model.name!r}): build it through igm "
            "(igm.testing.build_model, igm fit) or give the class a `name`"
        )

    try:
        plugin = get_registry().component("models", model.name).plugin
        dist, version = plugin.dist or plugin.name, plugin.version or ""
    except UnknownNameError:
        dist, version = "", ""
    return {
        "igm.format": FORMAT_VERSION,
        "igm.model": model.name,
        "igm.plugin": dist,
        "igm.plugin_version": version,
        "igm.version": __version__,
        "igm.config": json.dumps(cfg.to_dict(model.config), sort_keys=True),
        "igm.data": model.data.to_json(),
        "igm.step": str(step if step is not None else 0),
    }


def save(model: Model, path: str | Path, step: int | None = None) -> Path:
    """Write the model's checkpoint (every tensor + metadata) atomically."""
    return save_tensors(path, model.state_dict(), model_metadata(model, step))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The igm metadata of a checkpoint without loading its tensors."""
    return check_metadata(Path(path), read_file(path, tensors=False)[1])


def check_metadata(path: Path, metadata: dict[str, str]) -> dict[str, str]:
    missing = [k for k in ("igm.format", "igm.model", "igm.config", "igm.data") if k not in metadata]
    if missing:
        raise CheckpointError(
            f"{path} is a safetensors file but not an igm checkpoint (no {', '.join(missing)} metadata): "
            "give a checkpoint written by igm"
        )
    if metadata["igm.format"] not in READABLE_FORMATS:
        raise CheckpointError(
            f"{path} uses checkpoint format {metadata['igm.format']!r}; this igm reads formats "
            f"{', '.join(READABLE_FORMATS)}: "
            "upgrade igm"
        )
    if not NAME.match(metadata["igm.model"]):
        raise CheckpointError(
            f"{path} names model {metadata['igm.model']!r}, which is not a registered model name "
            "(igm never imports code named by a checkpoint)"
        )
    json_object(path, metadata, "igm.config")
    data = json_object(path, metadata, "igm.data")
    try:
        step = int(metadata.get("igm.step", "0"))
        shape = data["event_shape"]
        if step < 0 or not isinstance(shape, list) or not all(type(d) is int and d > 0 for d in shape):
            raise ValueError("a step or event shape out of range")
        if not isinstance(data.get("extra", {}), dict):
            raise ValueError("extra is not an object")
        means = data.get("extra", {}).get("means")
        if means is not None and not (torch.tensor(means, dtype=torch.float64).ndim == 2 and
                                      torch.isfinite(torch.tensor(means, dtype=torch.float64)).all()):
            raise ValueError("mixture means are not a finite matrix")
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} has damaged igm metadata ({exc}): use another checkpoint") from None
    return metadata


def json_object(path: Path, metadata: dict[str, str], key: str) -> dict[str, Any]:
    """The JSON object stored under ``key``; CheckpointError for anything else (bad JSON, a list, too deep)."""
    try:
        value = json.loads(metadata[key])
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path} has damaged igm metadata ({key}: {str(exc)[:100]}): use another checkpoint") from None
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{path} has damaged igm metadata ({key} is a {type(value).__name__}, not an object): use another checkpoint"
        )
    return value


def load(path: str | Path, device: str | torch.device = "cpu") -> Model:
    """Rebuild a model from a checkpoint through the registry and load its tensors strictly.

    The returned model is in eval mode on ``device``; ``load(path).generator.sample(n)`` draws.
    """
    from igm.data.base import DataInfo
    from igm.nn.factory import forget_unread

    path = Path(path)
    tensors, metadata = read_file(path)
    metadata = check_metadata(path, metadata)
    name = metadata["igm.model"]
    plugin = metadata.get("igm.plugin", "")
    if not DIST_NAME.match(plugin):  # only ever echoed as advice, never imported; keep the advice sane
        plugin = f"igm-{name}"
    try:
        model_cls = get_registry().get("models", name)
    except UnknownNameError as exc:
        if len(get_registry().claims.get(("models", name), [])) > 1:  # two plugins claim it: none is installing
            raise CheckpointError(f"{path} needs model '{name}': {exc}") from None
        raise CheckpointError(
            f"{path} needs model '{name}' from {plugin}, which is not available ({exc}): pip install {plugin}"
        ) from None
    try:
        stored = cfg.as_stored_then(model_cls.Config, json_object(path, metadata, "igm.config"))
        config = cfg.build(model_cls.Config, stored, what=f"'{name}' config")
        config = forget_unread(config)  # settings its network never read, stored at an older version's defaults
        data = DataInfo.from_json(metadata["igm.data"])
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{path} holds a config that model '{name}' does not accept ({exc}); it was written by "
            f"{plugin} {metadata.get('igm.plugin_version', '')}: install that version"
        ) from None
    from igm.models import instantiate

    try:
        model = instantiate(model_cls, config, data, name)  # sizes checked before anything is allocated
    except (ConfigError, DataError) as exc:
        raise CheckpointError(f"{path} holds a config that model '{name}' rejects ({exc}): use another checkpoint") from None
    load_state(model, tensors, path, metadata)
    return model.to(device).eval()


_OLD_DCGAN28 = (
    "a 28x28 network=dcgan checkpoint written before the standard layout (2026-11-21) holds the SIG "
    "paper's networks: set network to sig-dcgan in its igm.config metadata (docs/checkpoints.md)"
)


def _is_old_dcgan28(metadata: dict[str, str]) -> bool:
    """Whether a format-1 checkpoint asks for the 28x28 ``dcgan`` layout (whose tensors changed on 2026-11-21)."""
    if metadata.get("igm.format") != "1":
        return False
    try:
        config, data = json.loads(metadata["igm.config"]), json.loads(metadata["igm.data"])
        return config.get("network") == "dcgan" and list(data.get("event_shape", []))[-2:] == [28, 28]
    except (KeyError, ValueError, TypeError, AttributeError):
        return False


def load_state(model: Model, tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Strictly load ``tensors`` into ``model``; a mismatch is one line that says what differs."""
    model.prepare_load(tensors)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [k for k in expected if k in tensors and expected[k].shape != tensors[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
        raise CheckpointError(
            f"{path} does not match model '{metadata['igm.model']}' ({'; '.join(parts)}); "
            + (_OLD_DCGAN28 if _is_old_dcgan28(metadata) else
               f"it was written by {metadata.get('igm.plugin', '?')} "
               f"{metadata.get('igm.plugin_version', '')}: install that version")
        )
    model.load_state_dict(tensors, strict=True)


# ---- trainer state: optimizers, RNGs, data stream ------------------------------------------


def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimizer's state_dict into tensors and a JSON-able rest."""
    state = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                plain.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def load_optimizer_state(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = tensor
    for idx, entry in meta["plain"].items():
        state.setdefault(int(idx), {}).update(entry)
    params = [p for group in opt.param_groups for p in group["params"]]
    for idx, entry in state.items():  # moments and buffers are shaped like their parameter; a step is a scalar
        for key, value in entry.items():
            if isinstance(value, Tensor) and value.numel() != 1 and value.shape != params[idx].shape:
                raise ValueError(f"optimizer state {prefix}.{idx}.{key} has shape {tuple(value.shape)}, "
                                 f"its parameter {tuple(params[idx].shape)}")
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})
