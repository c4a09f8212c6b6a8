"""Does a model fit a dataset? One check for the CLI, the demo and the audit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from deepscope.errors import InputError
from deepscope.models import zoo
from deepscope.models.execution import batched

__all__ = ["check_arch_input", "check_compatible"]


def check_arch_input(arch: str, input_shape: Sequence[int], *, dataset: str = "the data") -> None:
    """Raise :class:`InputError` naming the fitting zoo architectures when ``arch`` cannot take
    inputs of ``input_shape`` (C, H, W)."""
    spec = zoo.spec(arch)
    if spec.modality == "sequence" and len(tuple(input_shape)) == 1:
        return  # sequence models take any length T
    if not spec.accepts(tuple(input_shape)):
        fitting = [n for n in zoo.names() if zoo.spec(n).accepts(tuple(input_shape))]
        raise InputError(
            f"model {arch!r} takes inputs of shape {tuple(spec.input_shape)} "
            f"({'T' if spec.input_dtype == 'int64' else 'C,H,W'}) but "
            f"{dataset} has {tuple(input_shape)}; choose one of: {', '.join(fitting) or '(none)'}"
        )


def check_compatible(model: nn.Module, arch: str | None, dataset: Any) -> None:
    """Raise :class:`InputError` when ``model`` cannot take ``dataset``'s inputs or labels.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (its state is preserved).
    arch : str or None
        Its zoo architecture name, when known (checked against the input shape first).
    dataset : Dataset
        Has ``x``, ``name``, ``input_shape`` and ``num_classes``.
    """
    name = f"dataset {getattr(dataset, 'name', '?')!r}"
    if arch is not None and arch in zoo.names():
        check_arch_input(arch, dataset.input_shape, dataset=name)
    try:
        out = batched(model, dataset.x[:2])
    except RuntimeError as exc:
        raise InputError(
            f"the model cannot take inputs of shape {tuple(dataset.input_shape)} from {name}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    if getattr(dataset, "per_position", False):
        if out.ndim != 3 or out.shape[-1] < dataset.num_classes:
            raise InputError(
                f"{name} has one label per position, so the model must be a tagger returning "
                f"N×T×{dataset.num_classes} logits; it returns {tuple(out.shape)} (choose a "
                "tagger architecture, e.g. byte-cnn-80k)"
            )
        return
    if out.ndim != 2 or out.shape[1] < dataset.num_classes:
        raise InputError(
            f"the model outputs {tuple(out.shape[1:])} scores per input but {name} has "
            f"{dataset.num_classes} classes"
        )
