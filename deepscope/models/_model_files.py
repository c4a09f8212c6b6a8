"""Reading model files by content: one loader per kind, behind a registry.

Used by :func:`deepscope.models.external.load_model` (see its module docstring for the kinds).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepscope.errors import CheckpointError, InputError, ModelError
from deepscope.models import zoo
from deepscope.models.io import CUSTOM_PREFIX, FORMAT, Checkpoint, load_checkpoint, load_custom
from deepscope.models.text_io import vocabulary_of
from deepscope.registry import Registry

__all__ = ["EXTRA_FILE", "LOADERS", "MissingExtraError", "Raw", "UnsafeModelError", "sniff"]

#: The TorchScript extra file that may carry ``input_shape``, ``classes``, ``input_dtype``.
EXTRA_FILE = "deepscope.json"
_PICKLE_MAGIC = b"\x80"


class UnsafeModelError(CheckpointError):
    """A model file is a pickle that would import or run code when loaded; it is refused."""


class MissingExtraError(ModelError):
    """Loading this kind of model needs an optional extra that is not installed."""


# ----------------------------------------------------------------------------------------------
# sniffing the file


def _looks_like_onnx(head: bytes) -> bool:
    """A serialised ModelProto starts with field 1 (``ir_version``, a small varint) followed by
    another field's tag (varint or length-delimited)."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] & 0x07 in (0, 2)


def sniff(path: Path) -> str:
    """``"torchscript"``, ``"torch"`` (a torch.save file: checkpoint or state_dict) or
    ``"onnx"``; raise when the file is missing, empty or of another kind."""
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist; pass the path of a deepscope "
                              "checkpoint, a TorchScript or an ONNX file")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file; pass the model file itself")
    with path.open("rb") as f:
        head = f.read(8)
    if not head:
        raise CheckpointError(f"model file {path} is empty; save the model again")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(f"model file {path} is a corrupt zip archive ({exc}); save "
                                  "the model again") from None
        script = any("/code/" in n or n.endswith("constants.pkl") for n in names)
        return "torchscript" if script else "torch"
    if head.startswith(_PICKLE_MAGIC):
        return "torch"  # the legacy (pre-zip) torch.save format is a plain pickle
    if path.suffix.lower() == ".onnx" or _looks_like_onnx(head):
        return "onnx"
    raise CheckpointError(
        f"{path} is not a model file deepscope reads: expected a deepscope checkpoint, a "
        "TorchScript file (torch.jit.save), an ONNX file, or a state_dict with arch=")


# ----------------------------------------------------------------------------------------------
# one loader per kind


@dataclass
class Raw:
    """What a loader found, before the common checks."""

    module: nn.Module
    input_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None
    checkpoint: Checkpoint | None = None
    input_dtype: str | None = None


_Loader = Callable[[Path, dict[str, Any]], Raw]
LOADERS: Registry[_Loader] = Registry("model kind")


def _weights_only(path: Path, device: str) -> Any:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text or \
                "Unsupported operand" in text:
            raise UnsafeModelError(
                f"refused {path}: it is a pickle that would import or run Python code when "
                "loaded (weights_only=True); export the model with torch.jit.save or save its "
                "state_dict and pass arch='pkg.module:factory'") from None
        first = text.splitlines()[0] if text else type(exc).__name__
        raise CheckpointError(f"cannot read model file {path}: it is corrupt or truncated "
                              f"({type(exc).__name__}: {first}); save the model again") from None


@LOADERS.register("torch")
def _load_torch_file(path: Path, opts: dict[str, Any]) -> Raw:
    payload = _weights_only(path, opts["device"])
    arch = opts["arch"]
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        saved = payload.get("arch")
        custom = isinstance(saved, str) and saved.startswith(CUSTOM_PREFIX)
        if arch is not None and not (custom and saved == CUSTOM_PREFIX + arch):
            raise InputError(
                f"{path} is a deepscope checkpoint of architecture {saved!r}; drop arch="
                f"{arch!r} (--arch), the checkpoint names its own architecture")
        if custom and arch is None:
            raise CheckpointError(
                f"{path} uses the custom architecture {saved!r}, which imports and runs Python "
                f"code; pass arch={saved[len(CUSTOM_PREFIX):]!r} (--arch) if you trust it")
        ckpt = load_checkpoint(path, map_location=opts["device"], allow_custom=custom)
        shape = dtype = None
        if ckpt.arch in zoo.names():
            spec = zoo.spec(ckpt.arch)
            dtype = spec.input_dtype
            shape = tuple(spec.input_shape) if all(spec.input_shape) else None
            vocab = vocabulary_of(ckpt) if spec.modality == "sequence" else None
            if vocab is not None:  # a text classifier: T is the vocabulary's length
                shape = (int(vocab.max_length),)
        return Raw(ckpt.model, shape, tuple(ckpt.classes), ckpt, dtype)
    if arch is None:
        what = "a state_dict" if isinstance(payload, dict) else f"a {type(payload).__name__}"
        raise CheckpointError(
            f"{path} holds {what}, not a whole model; pass arch='pkg.module:factory' (--arch) "
            "to build the model, or export it with torch.jit.save")
    names = opts["class_names"]
    if names is None and opts["num_classes"] is not None:
        names = tuple(str(i) for i in range(opts["num_classes"]))
    return Raw(load_custom(arch, path, classes=names, map_location=opts["device"]))


def _script_metadata(path: Path, extra: dict[str, Any]) -> tuple[Any, Any, Any]:
    text = extra.get(EXTRA_FILE) or ""
    if not text:
        return None, None, None
    try:
        meta = json.loads(text)
        shape = meta.get("input_shape")
        classes = meta.get("classes")
        return (None if shape is None else tuple(int(v) for v in shape),
                None if classes is None else tuple(str(c) for c in classes),
                meta.get("input_dtype"))
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its {EXTRA_FILE} is not valid metadata ({exc}); "
                              "write a JSON object with input_shape and classes") from None


@LOADERS.register("torchscript")
def _load_torchscript(path: Path, opts: dict[str, Any]) -> Raw:
    if opts["arch"] is not None:
        raise InputError(f"{path} is a TorchScript file, which carries its own code; drop "
                         f"arch={opts['arch']!r} (--arch)")
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():  # torch 2.9+ deprecates TorchScript; users still ship it
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=opts["device"], _extra_files=extra)
    except Exception as exc:  # the TorchScript reader raises RuntimeError and others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read TorchScript file {path}: it is corrupt or was "
                              f"saved by an incompatible torch ({first}); export it again with "
                              "torch.jit.save") from None
    shape, classes, dtype = _script_metadata(path, extra)
    return Raw(module, shape, classes, None, dtype)


@LOADERS.register("onnx")
def _load_onnx(path: Path, opts: dict[str, Any]) -> Raw:
    from deepscope.models import _onnx  # onnx / onnx2torch are imported only here

    if opts["arch"] is not None:
        raise InputError(f"{path} is an ONNX file, which carries its own graph; drop "
                         f"arch={opts['arch']!r} (--arch)")
    module, shape, dtype = _onnx.load_onnx(path)
    return Raw(module, shape, None, None, dtype)
