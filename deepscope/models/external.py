"""Bring your own model: one loader for the files a user arrives with.

:func:`load_model` reads, by content (never by extension alone):

``"deepscope"``
    a checkpoint written by :func:`deepscope.models.save_checkpoint` (safe loader,
    ``weights_only=True``); it knows its architecture, classes, input shape, training data and,
    for text models, vocabulary.
``"torchscript"``
    a ``torch.jit.save`` archive (a zip holding ``code/`` and ``constants.pkl``), loaded with
    :func:`torch.jit.load`. Optional metadata in an extra file ``deepscope.json``
    (``torch.jit.save(m, f, _extra_files={"deepscope.json": json.dumps({...})})``) with keys
    ``input_shape``, ``classes``, ``input_dtype`` is read when present.
``"onnx"``
    an ONNX model converted to PyTorch with ``onnx2torch`` (optional extra:
    ``pip install 'deepscope[onnx]'``); the input shape is read from the graph.
``"state-dict"``
    a bare ``state_dict`` (``torch.save(model.state_dict(), f)``, loaded with
    ``weights_only=True``) plus ``arch="pkg.module:factory"``, an explicit opt-in to import and
    call that code (:func:`deepscope.models.load_custom`).

Any other pickle is refused: ``torch.load(..., weights_only=True)`` does not run the code a
pickle names, and :class:`UnsafeModelError` says so.

Input shape and number of classes come from the model (checkpoint metadata, the ONNX graph,
``deepscope.json``), from the arguments, or from a probe forward pass; :meth:`LoadedModel.
check_against` probes the model with a dataset and fills what is still unknown, or raises a
one-line :class:`~deepscope.errors.InputError` saying what to pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepscope._typing import PathType
from deepscope.errors import DeepscopeError, InputError
from deepscope.models import zoo
from deepscope.models._model_files import (
    LOADERS,
    MissingExtraError,
    Raw,
    UnsafeModelError,
    sniff,
)
from deepscope.models.execution import batched
from deepscope.models.io import Checkpoint

__all__ = [
    "KINDS",
    "LoadedModel",
    "MissingExtraError",
    "ModelInputError",
    "UnsafeModelError",
    "load_model",
]

#: What :attr:`LoadedModel.kind` can be.
KINDS = ("deepscope", "torchscript", "onnx", "state-dict")


class ModelInputError(InputError):
    """The model does not take the data's inputs, or its outputs do not fit the data's labels."""


# ----------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A user's model, ready to run, with what is known about it.

    Attributes
    ----------
    module : torch.nn.Module
        The model, in eval mode, on the requested device.
    kind : {"deepscope", "torchscript", "onnx", "state-dict"}
        What the file was.
    input_shape : tuple of int or None
        Shape of one sample, e.g. ``(1, 28, 28)`` or ``(T,)``; None when not yet known (see
        :meth:`check_against`).
    num_classes : int or None
        Number of outputs per sample.
    class_names : tuple of str or None
        Class names (index = label id), when the model or the caller says.
    checkpoint : Checkpoint or None
        The deepscope checkpoint (training-data provenance, text vocabulary), when it is one.
    differentiable : bool
        Whether gradients flow from the outputs back to a float input (False for token-id
        models and for models whose probe output carries no graph).
    path : pathlib.Path
        The file it was loaded from.
    input_dtype : {"float32", "int64"}
        Float images / rows, or int64 token / byte ids.
    """

    module: nn.Module = field(repr=False)
    kind: str
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    class_names: tuple[str, ...] | None
    checkpoint: Checkpoint | None = field(repr=False)
    differentiable: bool
    path: Path
    input_dtype: str = "float32"

    @property
    def parameters(self) -> int:
        """Number of parameters of :attr:`module`."""
        return zoo.count_parameters(self.module)

    @property
    def arch(self) -> str | None:
        """The architecture name of a deepscope checkpoint (zoo or ``custom:...``)."""
        return None if self.checkpoint is None else self.checkpoint.arch

    def to_dict(self) -> dict[str, Any]:
        """A model card as plain JSON types."""
        record = None if self.checkpoint is None else self.checkpoint.training_data
        return {
            "kind": self.kind,
            "path": str(self.path),
            "arch": self.arch,
            "parameters": self.parameters,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "input_dtype": self.input_dtype,
            "num_classes": self.num_classes,
            "classes": None if self.class_names is None else list(self.class_names),
            "differentiable": self.differentiable,
            "training_data": None if record is None else record.describe(),
        }

    def check_against(self, dataset: Any) -> LoadedModel:
        """Check that this model takes ``dataset``'s inputs and labels; fill unknown fields.

        Parameters
        ----------
        dataset : deepscope.data.Dataset
            The user's data (``x``, ``y``, ``classes``, ``input_shape``, ``num_classes``).

        Returns
        -------
        LoadedModel
            This model with :attr:`input_shape`, :attr:`num_classes`, :attr:`class_names` and
            :attr:`differentiable` set from the probe and the data.

        Raises
        ------
        ModelInputError
            One line saying what differs and what to pass: other input shape or dtype, fewer
            outputs than the data has classes, or other class names.
        """
        shape = tuple(int(v) for v in dataset.input_shape)
        dtype = "int64" if dataset.x.dtype == torch.int64 else "float32"
        if self.input_dtype != dtype and self.input_shape is not None:
            raise ModelInputError(
                f"the model takes {self.input_dtype} inputs but the data holds {dtype} "
                f"{'token ids' if dtype == 'int64' else 'images or rows'}; pass data of the "
                "model's kind (texts need the model's vocabulary)")
        if self.input_shape is not None and not _shape_fits(self.input_shape, shape):
            raise ModelInputError(
                f"the model takes inputs of shape {_fmt(self.input_shape)} but the data has "
                f"{_fmt(shape)}; pass data of that shape (images: resize=True / --resize, "
                f"grayscale= / --grayscale) or the model's true input_shape / --input-shape")
        out = _probe(self.module, dataset.x[:2], what="the data")
        k = int(out.shape[1])
        if self.num_classes is not None and k != self.num_classes:
            raise ModelInputError(
                f"the model outputs {k} scores per input, not num_classes={self.num_classes}; "
                f"pass num_classes={k} (--num-classes {k})")
        if dataset.num_classes > k:
            raise ModelInputError(
                f"the data has {dataset.num_classes} classes but the model outputs only {k} "
                f"scores; pass data with labels 0..{k - 1} (or the model that was trained "
                "for these classes)")
        names = tuple(dataset.classes)
        if self.class_names is not None:
            if names != tuple(self.class_names[: len(names)]):
                raise ModelInputError(
                    f"the data's classes {_short(names)} are not the model's "
                    f"{_short(self.class_names)} in that order; load the data with "
                    "classes=model.class_names (--classes) so labels follow the model")
            names = tuple(self.class_names)
        else:
            _check_numbered(names)
            if len(names) < k:
                names = names + tuple(str(i) for i in range(len(names), k))
        return replace(self, input_shape=shape, num_classes=k, class_names=names,
                       input_dtype=dtype,
                       differentiable=dtype == "float32" and _flows(self.module, dataset.x[:2]))


# ----------------------------------------------------------------------------------------------
# probing


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join("T" if v == 0 else str(v) for v in shape) + ")"


def _short(names: Sequence[str]) -> str:
    names = list(names)
    return str(names if len(names) <= 6 else [*names[:5], "..."])


def _shape_fits(expected: Sequence[int], got: Sequence[int]) -> bool:
    return len(expected) == len(got) and all(e in (0, g) for e, g in zip(expected, got,
                                                                          strict=True))


def _probe(module: nn.Module, x: torch.Tensor, *, what: str) -> torch.Tensor:
    try:
        out = batched(module, x)
    except DeepscopeError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelInputError(
            f"the model cannot take inputs of shape {_fmt(tuple(x.shape[1:]))} "
            f"({x.dtype}) from {what}: {first[:200]}; pass the model's input_shape / "
            "--input-shape, or data of the shape it was trained on") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] < 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelInputError(
            f"the model returns {got} for a batch of {len(x)}; deepscope audits classifiers "
            "that return N×K scores (K >= 2 classes)")
    return out


def _flows(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether an input gradient exists: the output of a float input carries a graph."""
    if not x.is_floating_point():
        return False
    xg = x.detach().clone().requires_grad_(True)
    try:
        out = batched(module, xg, grad=True, freeze=True, cast_input=False)
        (grad,) = torch.autograd.grad(out.sum(), xg, allow_unused=True)
    except Exception:
        return False
    return grad is not None and bool(torch.isfinite(grad).all())


def _example(shape: tuple[int, ...], dtype: str, device: str) -> torch.Tensor:
    if dtype == "int64":
        return torch.ones((2, *shape), dtype=torch.int64, device=device)
    return torch.full((2, *shape), 0.5, dtype=torch.float32, device=device)


def _check_numbered(names: tuple[str, ...]) -> None:
    """Class names that are numbers other than 0..K-1 (folders ``3`` and ``7``) get labels by
    their order, which a model without class names cannot confirm: refuse the guess."""
    if all(n.isdigit() for n in names) and names != tuple(str(i) for i in range(len(names))):
        raise ModelInputError(
            f"the data's classes are numbered {_short(names)} but get labels 0..{len(names) - 1}"
            " by their order, and the model has no class names to match; pass class_names "
            "(--classes) listing the model's outputs in order, e.g. 0,1,...,9")


def _probe_dtypes(module: nn.Module, shape: tuple[int, ...], dtype: str | None, device: str
                  ) -> tuple[str, torch.Tensor, torch.Tensor]:
    """Probe with float inputs, and with int64 ids too for a 1-D shape of unknown dtype
    (token-id models); return ``(dtype, example, output)`` of the first that runs."""
    candidates = [dtype] if dtype else (["float32", "int64"] if len(shape) == 1 else
                                        ["float32"])
    for i, candidate in enumerate(candidates):
        example = _example(shape, candidate, device)
        try:
            return candidate, example, _probe(module, example, what=f"input_shape {_fmt(shape)}")
        except ModelInputError:
            if i == len(candidates) - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _check_device(device: Any) -> str:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device must be like 'cpu' or 'cuda:0', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but CUDA is not available here; pass "
                         "device='cpu' (--device cpu)")
    return str(dev)


def _check_flags(input_shape: Any, num_classes: Any, class_names: Any
                 ) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    shape = None
    if input_shape is not None:
        try:
            shape = tuple(int(v) for v in input_shape)
        except (TypeError, ValueError):
            raise InputError(f"input_shape must be a sequence of ints like (1, 28, 28), got "
                             f"{input_shape!r}") from None
        if not shape or any(v < 1 for v in shape) or len(shape) not in (1, 3):
            raise InputError(f"input_shape must be (C, H, W) for images or (T,) / (D,) for "
                             f"sequences and rows, each >= 1, got {input_shape!r}")
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, int) or num_classes < 2):
        raise InputError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    names = None
    if class_names is not None:
        if isinstance(class_names, str):
            raise InputError("class_names must be a sequence of names, not one string")
        names = tuple(str(c) for c in class_names)
        if len(set(names)) != len(names) or len(names) < 2:
            raise InputError(f"class_names must be at least 2 distinct names, got {names!r}")
        if num_classes is not None and len(names) != num_classes:
            raise InputError(f"{len(names)} class_names but num_classes={num_classes}; pass "
                             "one name per output")
    return shape, names


def _finish(raw: Raw, kind: str, path: Path, opts: dict[str, Any]) -> LoadedModel:
    module = raw.module.to(opts["device"]).eval()
    given_shape, given_names = opts["input_shape"], opts["class_names"]
    shape = raw.input_shape
    if given_shape is not None:
        if shape is not None and not _shape_fits(shape, given_shape):
            raise ModelInputError(
                f"the model takes inputs of shape {_fmt(shape)}, not input_shape="
                f"{_fmt(given_shape)}; pass data of shape {_fmt(shape)} (or drop input_shape)")
        shape = given_shape
    names = raw.class_names
    if given_names is not None:
        if names is not None and names != given_names:
            raise InputError(f"the model's classes are {_short(names)}, not class_names="
                             f"{_short(given_names)}; drop class_names")
        names = given_names
    k = opts["num_classes"]
    dtype = raw.input_dtype or "float32"
    differentiable = dtype == "float32"
    if shape is not None and all(shape):
        dtype, example, out = _probe_dtypes(module, shape, raw.input_dtype, opts["device"])
        if k is not None and out.shape[1] != k:
            raise ModelInputError(f"the model outputs {out.shape[1]} scores per input, not "
                                  f"num_classes={k}; pass num_classes={out.shape[1]}")
        k = int(out.shape[1])
        differentiable = dtype == "float32" and _flows(module, example)
    if names is not None:
        if k is not None and len(names) != k:
            raise ModelInputError(f"{len(names)} class names for a model with {k} outputs; "
                                  "pass one name per output (class_names / --classes)")
        k = len(names)
    return LoadedModel(module=module, kind=kind, input_shape=shape, num_classes=k,
                       class_names=names, checkpoint=raw.checkpoint,
                       differentiable=differentiable, path=path, input_dtype=dtype)


def load_model(
    path: PathType,
    *,
    arch: str | None = None,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    device: str = "cpu",
) -> LoadedModel:
    """Load a user's classifier from a deepscope checkpoint, TorchScript, ONNX or state_dict.

    Parameters
    ----------
    path : str or PathLike
        The model file; its kind is detected from its content (module docstring).
    arch : str, optional
        ``"pkg.module:factory"`` building the network of a bare ``state_dict`` file (or of a
        deepscope checkpoint with a custom architecture): an explicit opt-in to run that code.
    input_shape : sequence of int, optional
        One sample's shape, ``(C, H, W)`` or ``(T,)``; default: from the model when it says.
    num_classes : int, optional
        Expected number of outputs (checked by a probe forward pass).
    class_names : sequence of str, optional
        Class names, one per output.
    device : str
        Where the model runs (``"cpu"``, ``"cuda"``, ...).

    Returns
    -------
    LoadedModel
        Fields not known yet (a TorchScript file without metadata and without ``input_shape``)
        are None until :meth:`LoadedModel.check_against` probes it with the data.

    Raises
    ------
    CheckpointError
        Missing, empty, corrupt or unrecognised file; a state_dict without ``arch``.
    UnsafeModelError
        A pickle that would run code (refused, nothing of it executed).
    MissingExtraError
        An ONNX file without the ``onnx`` extra installed.
    ModelInputError, InputError
        The model does not take ``input_shape`` or disagrees with ``num_classes`` /
        ``class_names``; the message says what to pass.
    """
    path = Path(path)
    if arch is not None and not isinstance(arch, str):
        raise InputError(f"arch must be a 'pkg.module:factory' string, got {arch!r}")
    shape, names = _check_flags(input_shape, num_classes, class_names)
    opts = {"arch": arch, "input_shape": shape, "num_classes": num_classes,
            "class_names": names, "device": _check_device(device)}
    sniffed = sniff(path)
    raw = LOADERS.get(sniffed)(path, opts)
    kind = {"torch": "deepscope" if raw.checkpoint is not None else "state-dict"}.get(
        sniffed, sniffed)
    return _finish(raw, kind, path, opts)
