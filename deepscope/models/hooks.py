"""The only place where deepscope touches forward hooks.

Layers are named by dotted path (``model.get_submodule``). Every context manager registers its
hooks inside ``try`` and removes every handle in ``finally``; on exit (also after an exception) it
restores ``training`` of every module and ``requires_grad`` of every parameter.

Example
-------
>>> with capture(model, ["block1", "fc1"]) as acts:      # doctest: +SKIP
...     logits = model(x)
>>> acts["fc1"].shape                                      # doctest: +SKIP
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from deepscope.errors import InputError
from deepscope.models.execution import restore_state, snapshot_state

__all__ = ["capture", "intervene", "layer_names", "resolve", "split"]


def layer_names(model: nn.Module) -> list[str]:
    """Dotted names of every submodule of ``model`` (the root excluded)."""
    return [name for name, _ in model.named_modules() if name]


def resolve(model: nn.Module, layer: str) -> nn.Module:
    """The submodule called ``layer``; :class:`InputError` listing the valid names otherwise."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(layer, str) or not layer:
        raise InputError(f"layer names are non-empty dotted strings, got {layer!r}")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise InputError(
            f"model has no layer {layer!r}; available layers: {', '.join(layer_names(model))}"
        ) from None


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, tuple):
        return tuple(_detach(v) for v in value)
    if isinstance(value, list):
        return [_detach(v) for v in value]
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    return value


@contextmanager
def _guarded(model: nn.Module, handles: list[RemovableHandle]) -> Iterator[None]:
    state = snapshot_state(model)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()
        restore_state(state)


@contextmanager
def capture(
    model: nn.Module, layers: Sequence[str] | str, *, detach: bool = True
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forward passes.

    Parameters
    ----------
    model : torch.nn.Module
        The model to observe.
    layers : str or sequence of str
        Dotted layer names (see :func:`layer_names`).
    detach : bool
        Store detached outputs (default); ``False`` keeps them in the autograd graph.

    Yields
    ------
    dict
        Layer name → that layer's output in the latest forward pass (filled as the model runs).
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise InputError("capture needs at least one layer name")
    modules = {name: resolve(model, name) for name in names}
    outputs: dict[str, torch.Tensor] = {}
    handles: list[RemovableHandle] = []

    def recorder(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            outputs[name] = _detach(output) if detach else output

        return hook

    with _guarded(model, handles):
        for name, module in modules.items():
            handles.append(module.register_forward_hook(recorder(name)))
        yield outputs


@contextmanager
def intervene(
    model: nn.Module,
    layer_or_mapping: str | Mapping[str, Callable[[torch.Tensor], torch.Tensor]],
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[nn.Module]:
    """Replace layer outputs by ``fn(output)`` during forward passes.

    Parameters
    ----------
    model : torch.nn.Module
        The model to modify temporarily.
    layer_or_mapping : str or mapping
        One dotted layer name (then ``fn`` is required), or ``{layer: fn}`` for several layers.
    fn : callable, optional
        ``fn(output) -> new_output`` for a single layer.

    Yields
    ------
    torch.nn.Module
        ``model`` itself, now running the interventions.
    """
    if isinstance(layer_or_mapping, str):
        if fn is None or not callable(fn):
            raise InputError("intervene(model, layer, fn) needs a callable fn for a single layer")
        mapping: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] = {layer_or_mapping: fn}
    elif isinstance(layer_or_mapping, Mapping):
        if fn is not None:
            raise InputError("pass either a {layer: fn} mapping or a layer and fn, not both")
        mapping = layer_or_mapping
        if not mapping:
            raise InputError("intervene needs at least one layer")
        for name, f in mapping.items():
            if not callable(f):
                raise InputError(f"the intervention for layer {name!r} is not callable")
    else:
        raise InputError(
            f"layer_or_mapping must be a layer name or a {{layer: fn}} mapping, "
            f"got {type(layer_or_mapping).__name__}"
        )
    modules = {name: resolve(model, name) for name in mapping}
    handles: list[RemovableHandle] = []

    def replacer(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[nn.Module, Any, Any], Any]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
            return f(output)

        return hook

    with _guarded(model, handles):
        for name, module in modules.items():
            handles.append(module.register_forward_hook(replacer(mapping[name])))
        yield model


def split(model: nn.Module, layer: str) -> tuple[nn.Sequential, nn.Sequential]:
    """Cut a tree of ``nn.Sequential`` after ``layer`` into a prefix and a suffix.

    ``suffix(prefix(x))`` equals ``model(x)``; both parts share the original modules (and so
    the parameters and buffers), and keep the original child names.

    Parameters
    ----------
    model : torch.nn.Sequential
        A zoo model (or any tree of ``nn.Sequential`` along the path to ``layer``).
    layer : str
        Dotted name of the last layer of the prefix, e.g. ``"block2"`` or ``"fc1.relu"``.

    Returns
    -------
    (prefix, suffix) : tuple of nn.Sequential
        ``prefix`` maps inputs to ``layer``'s output, ``suffix`` maps that to the logits.
    """
    resolve(model, layer)
    return _split(model, layer.split("."), layer)


def _split(seq: nn.Module, path: list[str], layer: str) -> tuple[nn.Sequential, nn.Sequential]:
    if not isinstance(seq, nn.Sequential):
        raise InputError(
            f"split needs nn.Sequential containers along the path to {layer!r}; found a "
            f"{type(seq).__name__}. Build the model as nested nn.Sequential (like the zoo)"
        )
    children = list(seq.named_children())
    names = [n for n, _ in children]
    idx = names.index(path[0])
    if len(path) == 1:
        head, tail = children[: idx + 1], children[idx + 1 :]
    else:
        inner_prefix, inner_suffix = _split(children[idx][1], path[1:], layer)
        head = [*children[:idx], (path[0], inner_prefix)]
        tail = [(path[0], inner_suffix), *children[idx + 1 :]]
    prefix, suffix = nn.Sequential(OrderedDict(head)), nn.Sequential(OrderedDict(tail))
    # the new containers report the original's mode (set the flag only: .train() would recurse)
    prefix.training = suffix.training = seq.training
    return prefix, suffix
