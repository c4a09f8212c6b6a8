"""The one place where deepscope runs a model outside training.

Every batched forward pass of the library, the CLI and the benchmarks goes through
:func:`batched` (or :func:`predict_logits` / :func:`predict_proba`, built on it); every change of
a model's mode goes through :func:`inference`, which puts the model in eval mode and restores
**every** module's ``training`` flag and **every** parameter's ``requires_grad`` in a
``finally`` — also when the model raises half-way.

Device follows the input: batches are moved to the model's device and dtype for the forward
pass, and results come back on the input's device (or ``to=`` when given).

Example
-------
>>> from deepscope.models import execution
>>> logits = execution.batched(model, x, batch_size=256)                  # doctest: +SKIP
>>> h, z = execution.batched(model, x, lambda xb: (prefix(xb), model(xb)))  # doctest: +SKIP
>>> with execution.inference(model, freeze=True, grad=True):              # doctest: +SKIP
...     loss = model(x.requires_grad_()).sum(); loss.backward()             # input gradients only
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from deepscope.errors import DeepscopeError, InputError
from deepscope.models import zoo

__all__ = [
    "ModelState",
    "batch_slices",
    "batched",
    "check_model_input",
    "expected_input_shape",
    "inference",
    "model_device",
    "model_dtype",
    "predict_logits",
    "predict_proba",
    "preserved_state",
    "restore_state",
    "snapshot_state",
]

ModelState = tuple[list[tuple[nn.Module, bool]], list[tuple[nn.Parameter, bool]]]
Output = torch.Tensor | tuple[torch.Tensor, ...]


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for parameter-less models."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """Floating dtype of the model's first floating parameter (float32 if none)."""
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def snapshot_state(model: nn.Module) -> ModelState:
    """Record every module's ``training`` flag and every parameter's ``requires_grad``."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    return modes, grads


def restore_state(state: ModelState) -> None:
    """Put back the ``training`` flags and ``requires_grad`` recorded by :func:`snapshot_state`."""
    modes, grads = state
    for m, training in modes:
        m.training = training
    for p, requires_grad in grads:
        p.requires_grad_(requires_grad)


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore ``training`` flags and ``requires_grad`` on exit, also after an exception."""
    state = snapshot_state(model)
    try:
        yield model
    finally:
        restore_state(state)


@contextmanager
def inference(
    model: nn.Module, *, grad: bool | None = False, freeze: bool = False
) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block; restore its whole state afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        The model; every submodule's ``training`` and every parameter's ``requires_grad`` are
        restored on exit, also when the block raises.
    grad : bool or None
        ``False`` (default): no autograd graph (``torch.no_grad``); ``True``: gradients enabled
        (e.g. input gradients of an attack); ``None``: leave the caller's setting.
    freeze : bool
        Set every parameter's ``requires_grad`` to False inside the block, so backward passes
        compute input gradients only.

    Yields
    ------
    torch.nn.Module
        ``model`` itself, in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    state = snapshot_state(model)
    grad_ctx = nullcontext() if grad is None else torch.set_grad_enabled(bool(grad))
    try:
        model.eval()
        if freeze:
            for p, _ in state[1]:
                p.requires_grad_(False)
        with grad_ctx:
            yield model
    finally:
        restore_state(state)


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices ``[0, b), [b, 2b), ...`` covering ``n`` items."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _move(out: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    if isinstance(out, torch.Tensor):
        if dtype is not None and out.is_floating_point():
            return out.to(device=device, dtype=dtype)
        return out.to(device)
    if isinstance(out, tuple):
        return tuple(_move(o, device, dtype) for o in out)
    raise InputError(
        f"a batched function must return a tensor or a tuple of tensors, got {type(out).__name__}"
    )


def _concat(parts: list[Any]) -> Output:
    if isinstance(parts[0], tuple):
        return tuple(torch.cat([p[i] for p in parts]) for i in range(len(parts[0])))
    return torch.cat(parts)


def batched(
    model: nn.Module,
    x: torch.Tensor,
    fn: Callable[[torch.Tensor], Output] | None = None,
    *,
    batch_size: int = 512,
    grad: bool | None = False,
    freeze: bool = False,
    to: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    cast_input: bool = True,
    progress: bool = False,
    desc: str = "forward",
) -> Output:
    """Apply ``fn`` (default: the model) to ``x`` in batches, in eval mode, state preserved.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose state is managed (see :func:`inference`); batches are moved to its
        device (and, for floating inputs, its dtype).
    x : torch.Tensor
        Inputs, first dimension = samples. Integer inputs (token or byte ids) keep their dtype.
    fn : callable, optional
        ``fn(batch) -> tensor or tuple of tensors``; default ``model``. Use it to run a prefix
        of the model, read several outputs at once, or score inside the loop.
    batch_size : int
        Samples per call of ``fn``.
    grad, freeze : see :func:`inference`.
    to : device, optional
        Where the concatenated results go; default ``x``'s device.
    dtype : torch.dtype, optional
        Cast floating results to this dtype (default: keep what ``fn`` returns).
    cast_input : bool
        Cast floating inputs to the model's dtype (default).
    progress : bool
        Show a progress bar over the batches.
    desc : str
        Label of that progress bar.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        The per-batch results concatenated along the first dimension.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.shape[0] == 0:
        raise InputError("x is empty (N = 0); pass at least one input")
    run = fn if fn is not None else model
    device = model_device(model)
    in_dtype = model_dtype(model) if cast_input and x.is_floating_point() else None
    dest = torch.device(to) if to is not None else x.device
    parts: list[Any] = []
    slices = list(batch_slices(x.shape[0], batch_size))
    bar = tqdm(total=x.shape[0], desc=desc, unit="in", disable=not progress, leave=False)
    try:
        with inference(model, grad=grad, freeze=freeze):
            for sl in slices:
                xb = x[sl].to(device=device, dtype=in_dtype) if in_dtype else x[sl].to(device)
                parts.append(_move(run(xb), dest, dtype))
                bar.update(sl.stop - sl.start)
    finally:
        bar.close()
    return _concat(parts)


def expected_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The per-sample input shape ``(C, H, W)`` a zoo model takes (``(0,)`` for text
    classifiers: any length), ``None`` when unknown (models not built by
    :func:`deepscope.models.zoo.build`)."""
    arch = zoo.arch_of(model)
    if arch is None:
        return None
    try:
        return tuple(int(v) for v in zoo.spec(arch).input_shape)
    except DeepscopeError:  # an architecture registered in another process
        return None


def arch_modality(model: nn.Module) -> str | None:
    """``"image"`` or ``"sequence"`` for a zoo model, ``None`` when unknown."""
    arch = zoo.arch_of(model)
    return zoo.spec(arch).modality if arch in zoo.names() else None


def check_model_input(model: nn.Module, x: torch.Tensor, what: str = "x") -> None:
    """Validate a batch at a public boundary, before it reaches the model.

    Raises :class:`InputError` when floating ``x`` holds NaN or infinite values, or when the
    model is a zoo model and one sample of ``x`` does not have its input shape (a raw torch
    shape error would be the alternative). Integer ``x`` (token / byte ids) must be int64 N×T
    with ids in ``[0, num_embeddings)`` of the model's first ``nn.Embedding``; a zoo image model
    refuses ids and a zoo sequence model refuses floats.
    """
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise InputError(f"{what} contains NaN or infinite values; clean the inputs first")
    if not x.is_floating_point():
        _check_ids(model, x, what)
        return
    expected = expected_input_shape(model)
    if arch_modality(model) == "sequence":
        raise InputError(f"{what} holds float inputs (dtype {x.dtype}, shape "
                         f"{tuple(x.shape[1:])}) but the model ({zoo.arch_of(model)}) takes int64 "
                         "token ids N×T (0 = padding); encode texts with the model's vocabulary")
    if expected is not None and not zoo.spec(str(zoo.arch_of(model))).accepts(
            tuple(x.shape[1:])):
        raise InputError(
            f"{what} has inputs of shape {tuple(x.shape[1:])} but the model "
            f"({zoo.arch_of(model)}) takes {expected} (C, H, W); resize the inputs or use a "
            "model built for them"
        )


def _check_ids(model: nn.Module, x: torch.Tensor, what: str) -> None:
    """Integer inputs: int64 N×T ids in ``[0, num_embeddings)`` of the model's first
    embedding (when it has one), and a sequence model for a zoo architecture."""
    arch = zoo.arch_of(model)
    if arch in zoo.names() and zoo.spec(arch).modality != "sequence":
        raise InputError(f"{what} holds integer ids of shape {tuple(x.shape[1:])} but the model "
                         f"({arch}) takes float32 images of shape {zoo.spec(arch).input_shape} "
                         "(C, H, W)")
    if x.dtype != torch.int64 or x.ndim != 2:
        raise InputError(f"{what} must be int64 N×T ids, got dtype {x.dtype} and shape "
                         f"{tuple(x.shape)}")
    emb = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if x.numel() and (int(x.min()) < 0 or (emb is not None and int(x.max()) >= emb.num_embeddings)):
        limit = "" if emb is None else f" and < {emb.num_embeddings} (the model's vocabulary)"
        raise InputError(f"{what} has ids in [{int(x.min())}, {int(x.max())}]; they must be >= 0"
                         f"{limit}: use the dataset the model was trained for")


def _as_input(x: Any) -> torch.Tensor:
    xt = getattr(x, "x", x)
    if not isinstance(xt, torch.Tensor):
        raise InputError(
            f"x must be a torch.Tensor or a Dataset (with .x), got {type(x).__name__}"
        )
    if xt.ndim < 2 or xt.shape[0] == 0:
        raise InputError(f"x must be a non-empty batch (N×...), got shape {tuple(xt.shape)}")
    return xt


def predict_logits(model: nn.Module, x: Any, *, batch_size: int = 512) -> torch.Tensor:
    """Logits of a batch of inputs, computed in eval mode without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier; its training flags are restored afterwards.
    x : torch.Tensor or Dataset
        Inputs (or a Dataset, whose ``x`` is used).
    batch_size : int
        Samples per forward pass.

    Returns
    -------
    torch.Tensor
        Logits on ``x``'s device, in ``x``'s dtype for floating inputs (float32 otherwise).

    Raises
    ------
    InputError
        ``x`` is empty, holds NaN or infinite values, or (for a zoo model) does not have the
        model's input shape.
    """
    xt = _as_input(x)
    check_model_input(model, xt)
    dtype = xt.dtype if xt.is_floating_point() else torch.float32
    out = batched(model, xt, batch_size=batch_size, dtype=dtype)
    assert isinstance(out, torch.Tensor)
    return out


def predict_proba(model: nn.Module, x: Any, *, batch_size: int = 512) -> torch.Tensor:
    """Softmax probabilities of :func:`predict_logits` (over the last dimension)."""
    return torch.softmax(predict_logits(model, x, batch_size=batch_size), dim=-1)
