"""Safe checkpoints: plain-type metadata plus a ``state_dict``, written atomically.

A checkpoint file is a ``torch.save`` of a dict of plain types only::

    {"format": "deepscope-checkpoint", "version": 1, "arch": "cnn-8k",
     "classes": ["0", ..., "9"], "config": {...}, "metadata": {...},
     "state_dict": {name: tensor, ...}}

so it loads with ``torch.load(..., weights_only=True)``: no arbitrary object is ever unpickled.
The model is rebuilt from the zoo (``zoo.build(arch, **config)``) or, for ``arch`` of the form
``"custom:pkg.module:factory"``, by calling that factory. Because a custom ``arch`` names code to
import and call, :func:`load_checkpoint` runs it only when ``allow_custom=True``.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope._atomic import default_file_mode
from deepscope._typing import PathType
from deepscope.errors import CheckpointError, DeepscopeError, InputError
from deepscope.models import zoo
from deepscope.models.provenance import METADATA_KEY, TrainingData

__all__ = ["Checkpoint", "load_checkpoint", "load_custom", "save_checkpoint"]

FORMAT = "deepscope-checkpoint"
VERSION = 1
CUSTOM_PREFIX = "custom:"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : torch.nn.Module
        Rebuilt model with the saved weights, in eval mode.
    arch : str
        Zoo name or ``"custom:pkg.module:factory"``.
    classes : tuple of str
        Class names, index = label id.
    config : dict
        Keyword arguments the model was built with.
    metadata : dict
        Free-form plain-type metadata (training recipe, accuracy, ...); what the model was
        trained on sits under ``"training_data"`` (see :attr:`training_data`).
    path : pathlib.Path
        Where it was loaded from.
    """

    model: nn.Module = field(repr=False)
    arch: str
    classes: tuple[str, ...]
    config: Mapping[str, Any]
    metadata: Mapping[str, Any]
    path: Path

    @property
    def training_data(self) -> TrainingData | None:
        """What the model was trained on, or None when the checkpoint does not say (older or
        foreign checkpoints)."""
        return TrainingData.from_metadata(self.metadata)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (without the weights)."""
        return {
            "arch": self.arch,
            "classes": list(self.classes),
            "config": dict(self.config),
            "metadata": dict(self.metadata),
            "path": str(self.path),
            "parameters": zoo.count_parameters(self.model),
        }


# ----------------------------------------------------------------------------------------------
# saving


def _plain(value: Any, where: str) -> Any:
    """Convert ``value`` to exactly plain types (``weights_only`` can load only those).

    Tuples become lists; subclasses of str/int/float (e.g. ``torch.__version__``) and numpy
    scalars become the built-in types.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where} is {value}; checkpoint metadata must be finite")
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(f"{where} has a non-string key {k!r}; use string keys")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InputError(
        f"{where} is a {type(value).__name__}; checkpoint config/metadata may only hold "
        "None, bool, int, float, str, lists and dicts with string keys"
    )


def _atomic_torch_save(obj: Any, path: Path, overwrite: bool) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(fd, default_file_mode())  # mkstemp makes 0600 files; use the usual permissions
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # os.link fails if `path` exists: no window where another writer is overwritten.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise CheckpointError(
                    f"{path} already exists; pass overwrite=True to replace it"
                ) from None
            except OSError:  # file system without hard links
                if path.exists():
                    raise CheckpointError(
                        f"{path} already exists; pass overwrite=True to replace it"
                    ) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(
    path: PathType,
    model: nn.Module,
    *,
    arch: str,
    classes: Sequence[str],
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model``'s weights and plain metadata to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination file (its folder is created if needed).
    model : torch.nn.Module
        Model whose ``state_dict`` is saved (tensors are copied to the CPU).
    arch : str
        Zoo name (``zoo.names()``) or ``"custom:pkg.module:factory"``.
    classes : sequence of str
        Class names, index = label id.
    config : mapping, optional
        Keyword arguments that rebuild the architecture (``zoo.build(arch, **config)`` or the
        custom factory). ``num_classes`` defaults to ``len(classes)`` for zoo models.
    metadata : mapping, optional
        Free-form plain-type information (training recipe, accuracy, dataset, ...). Record the
        training data as ``{"training_data": TrainingData.to_dict()}`` (or pass a
        :class:`~deepscope.models.provenance.TrainingData` there; it is converted).
    overwrite : bool
        Replace an existing file; otherwise an existing ``path`` raises :class:`CheckpointError`.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_arch(arch)
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes):
        raise InputError("classes must be a sequence of class-name strings")
    if len(classes) < 1:
        raise InputError("classes must not be empty")
    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give a file name such as model.pt")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "classes": list(classes),
        "config": _plain(dict(config or {}), "config"),
        "metadata": _plain(_with_plain_provenance(metadata), "metadata"),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_torch_save(payload, path, overwrite)
    return path


def _with_plain_provenance(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(metadata or {})
    if isinstance(out.get(METADATA_KEY), TrainingData):
        out[METADATA_KEY] = out[METADATA_KEY].to_dict()
    return out


def _check_arch(arch: Any) -> None:
    if not isinstance(arch, str):
        raise InputError(f"arch must be a string, got {type(arch).__name__}")
    if arch.startswith(CUSTOM_PREFIX):
        _split_factory(arch[len(CUSTOM_PREFIX) :])
    elif arch not in zoo.names():
        raise InputError(
            f"unknown arch {arch!r}: use a zoo name ({', '.join(zoo.names())}) "
            "or 'custom:pkg.module:factory'"
        )


# ----------------------------------------------------------------------------------------------
# loading


def _torch_load(path: Path, map_location: Any) -> Any:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is corrupt, truncated, not a torch file, or holds "
            f"objects other than tensors and plain types ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc


def load_checkpoint(
    path: PathType, *, map_location: Any = "cpu", allow_custom: bool = False
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (with ``weights_only=True``).

    Parameters
    ----------
    path : str or PathLike
        The checkpoint file.
    map_location : str, torch.device or callable
        Passed to :func:`torch.load`; the model is moved to the device of its loaded weights.
    allow_custom : bool
        Allow ``"custom:pkg.module:factory"`` architectures. Such a checkpoint names Python code
        that is imported and called, so only allow it for files you trust.

    Raises
    ------
    CheckpointError
        Missing, corrupt or inconsistent file, unknown architecture, or a custom architecture
        without ``allow_custom=True``.
    """
    path = Path(path)
    payload = _torch_load(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a deepscope checkpoint (no 'format': {FORMAT!r} entry); "
            "write it with deepscope.models.save_checkpoint, or load a bare state_dict with "
            "deepscope.models.load_custom"
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')!r}; this deepscope reads "
            f"version {VERSION}"
        )
    keys = ("arch", "classes", "config", "metadata", "state_dict")
    missing = [k for k in keys if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {missing}")
    arch, classes = payload["arch"], tuple(payload["classes"])
    config, state = dict(payload["config"]), payload["state_dict"]
    if not isinstance(arch, str) or not isinstance(state, dict):
        raise CheckpointError(f"{path} is malformed: 'arch' must be a string, 'state_dict' a dict")

    if arch.startswith(CUSTOM_PREFIX):
        if not allow_custom:
            raise CheckpointError(
                f"{path} uses the custom architecture {arch!r}, which imports and runs Python "
                "code named in the file; pass allow_custom=True only if you trust this checkpoint"
            )
        try:
            model = _build_custom(arch[len(CUSTOM_PREFIX) :], classes, config)
        except DeepscopeError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
    else:
        if arch not in zoo.names():
            raise CheckpointError(
                f"{path} has unknown architecture {arch!r}; known: {', '.join(zoo.names())}"
            )
        kwargs = dict(config)
        kwargs.setdefault("num_classes", len(classes))
        try:
            model = zoo.build(arch, **kwargs)
        except DeepscopeError as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild {arch!r} from its config: {exc}"
            ) from exc
    _load_state(model, state, path)
    return Checkpoint(
        model=model.eval(),
        arch=arch,
        classes=classes,
        config=config,
        metadata=dict(payload["metadata"]),
        path=path,
    )


def _load_state(model: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"the weights in {path} do not fit the architecture: {str(exc).splitlines()[0]}"
            f"{' ...' if len(str(exc).splitlines()) > 1 else ''}"
        ) from exc
    tensors = list(state.values())
    if tensors and isinstance(tensors[0], torch.Tensor):
        model.to(tensors[0].device)


def _split_factory(factory: str) -> tuple[str, str]:
    module, sep, name = factory.partition(":")
    if not sep or not module or not name or not all(p.isidentifier() for p in module.split(".")) \
            or not all(p.isidentifier() for p in name.split(".")):
        raise InputError(
            f"factory must look like 'pkg.module:function', got {factory!r}"
        )
    return module, name


def _resolve_factory(factory: str) -> Any:
    module_name, attr = _split_factory(factory)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"cannot import module {module_name!r} of factory {factory!r}: {exc}"
        ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(
                f"module {module_name!r} has no attribute {attr!r} (factory {factory!r})"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"factory {factory!r} is not callable")
    return obj


def _build_custom(
    factory: str, classes: Sequence[str] | None, kwargs: Mapping[str, Any]
) -> nn.Module:
    fn = _resolve_factory(factory)
    kw = dict(kwargs)
    if classes is not None and "num_classes" not in kw:
        try:
            accepts = "num_classes" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            accepts = False
        if accepts:
            kw["num_classes"] = len(classes)
    try:
        model = fn(**kw)
    except TypeError as exc:
        raise InputError(f"factory {factory!r} rejected arguments {sorted(kw)}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise InputError(
            f"factory {factory!r} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def load_custom(
    factory: str,
    state_dict_path: PathType,
    *,
    classes: Sequence[str] | None = None,
    map_location: Any = "cpu",
    **kwargs: Any,
) -> nn.Module:
    """Build a model with your own factory and load weights into it.

    Parameters
    ----------
    factory : str
        ``"pkg.module:function"`` (or ``"pkg.module:Class"``) returning an ``nn.Module``;
        called with ``**kwargs`` (plus ``num_classes=len(classes)`` when it accepts
        ``num_classes`` and ``classes`` is given).
    state_dict_path : str or PathLike
        A bare ``state_dict`` saved with ``torch.save(model.state_dict(), path)``, or a deepscope
        checkpoint (its ``state_dict`` is used). Loaded with ``weights_only=True``.
    classes : sequence of str, optional
        Class names, used for ``num_classes``.
    map_location : str, torch.device or callable
        Passed to :func:`torch.load`.

    Returns
    -------
    torch.nn.Module
        The model in eval mode.
    """
    if not isinstance(factory, str):
        raise InputError(
            f"factory must be a 'pkg.module:function' string, got {type(factory).__name__}"
        )
    path = Path(state_dict_path)
    state = _torch_load(path, map_location)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        state = state.get("state_dict")
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(
            f"{path} does not hold a state_dict (a mapping of names to tensors); save one with "
            "torch.save(model.state_dict(), path)"
        )
    model = _build_custom(factory, classes, kwargs)
    _load_state(model, state, path)
    return model.eval()
