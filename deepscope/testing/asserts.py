"""Assertion helpers for tests of anything that touches a model."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["assert_no_hooks", "assert_state_unchanged", "model_state"]

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
)


def assert_no_hooks(model: nn.Module) -> None:
    """Fail if any module of ``model`` still has a forward/backward hook registered."""
    for name, module in model.named_modules():
        for attr in _HOOK_DICTS:
            hooks = getattr(module, attr, None)
            if hooks:
                raise AssertionError(
                    f"module {name or '<root>'!r} still has {len(hooks)} entries in {attr}"
                )


def model_state(model: nn.Module) -> dict[str, Any]:
    """``training`` of every module and ``requires_grad`` of every parameter, by name."""
    return {
        "training": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
    }


def assert_state_unchanged(model: nn.Module, before: dict[str, Any]) -> None:
    """Fail if modes or ``requires_grad`` differ from a :func:`model_state` snapshot."""
    after = model_state(model)
    for key in ("training", "requires_grad"):
        changed = {n: (before[key][n], v) for n, v in after[key].items() if before[key].get(n) != v}
        if changed:
            raise AssertionError(f"{key} changed (before, after): {changed}")
