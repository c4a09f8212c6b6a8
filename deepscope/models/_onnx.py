"""ONNX files through ``onnx`` and ``onnx2torch`` (the optional ``onnx`` extra).

The graph is converted once to a ``torch.fx.GraphModule`` of ordinary torch modules, so the
model runs, and is differentiated, like any other ``nn.Module``. The per-sample input shape and
dtype are read from the graph's first real input (initialisers are not inputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepscope.errors import CheckpointError, ModelError
from deepscope.models._model_files import MissingExtraError

_EXTRA = "pip install 'deepscope[onnx]'"
#: ONNX TensorProto element types deepscope feeds: FLOAT and INT64.
_DTYPES = {1: "float32", 7: "int64"}


def _import() -> tuple[Any, Any]:
    try:
        import onnx
    except ImportError as exc:
        raise MissingExtraError(f"ONNX models need the onnx extra ({exc.name or 'onnx'} is "
                                f"missing); install it with `{_EXTRA}`") from None
    try:
        import onnx2torch
    except Exception as exc:  # a missing or broken torchvision raises anything
        cause = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if isinstance(exc, ImportError) and exc.name == "onnx2torch":
            raise MissingExtraError(f"ONNX models need the onnx extra (onnx2torch is missing); "
                                    f"install it with `{_EXTRA}`") from None
        raise MissingExtraError(
            f"onnx2torch cannot be imported ({cause[:160]}); it needs a torchvision built for "
            f"your torch {torch.__version__}: install that torchvision from the index your "
            "torch came from, or export the model with torch.jit.save instead") from None
    return onnx, onnx2torch


def _input_signature(model: Any) -> tuple[tuple[int, ...] | None, str | None]:
    graph = model.graph
    initialisers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        raise ModelError(f"the ONNX graph has {len(inputs)} inputs; deepscope audits models "
                         "with one input batch")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor.shape.dim]
    dtype = _DTYPES.get(int(tensor.elem_type))
    if len(dims) < 2 or any(v <= 0 for v in dims[1:]):
        return None, dtype  # symbolic sizes after the batch dimension: probe with the data
    return tuple(int(v) for v in dims[1:]), dtype


def _fold_identities(model: Any, numpy_helper: Any) -> int:
    """Replace ``Identity`` nodes of initialisers by initialisers (in place); return how many.

    ``torch.onnx.export`` routes shared or folded weights (e.g. BatchNorm folded into a Conv)
    through ``Identity`` nodes, but onnx2torch reads a Conv's weights from initialisers only.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    folded = [n for n in graph.node if n.op_type == "Identity" and n.input[0] in inits]
    for node in folded:
        array = numpy_helper.to_array(inits[node.input[0]])
        graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        graph.node.remove(node)
    return len(folded)


def load_onnx(path: Path) -> tuple[nn.Module, tuple[int, ...] | None, str | None]:
    """Convert the ONNX model at ``path``: ``(module, per-sample input shape, input dtype)``."""
    onnx, onnx2torch = _import()
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read ONNX file {path}: it is corrupt or not ONNX "
                              f"({first[:200]}); export it again with torch.onnx.export") from None
    shape, dtype = _input_signature(model)
    _fold_identities(model, onnx.numpy_helper)
    try:
        module = onnx2torch.convert(model)
    except Exception as exc:  # an operator onnx2torch does not convert
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"onnx2torch cannot convert {path} ({first[:200]}); export the model "
                         "as TorchScript (torch.jit.save) instead") from None
    return module, shape, dtype
