"""The audit's section registry, its settings and its time model.

A section is registered with :func:`register_section` as a :class:`SectionSpec`: a name, a
title, ``applies(inputs) -> reason or None``, ``estimate(inputs, config, costs) -> seconds``
and ``compute(inputs, config, memo) -> SectionResult``. The registry's order is the report's
order; ``--sections`` picks a subset by name. ``memo`` is a dict shared by the sections of one
run (e.g. the diagnosis' pool analysis, reused by the repair preview); nothing in it is cached
on disk.

:class:`Costs` measures the model once (seconds per forward sample, per gradient sample) so
that every section can estimate its time before it runs; :attr:`AuditConfig.scale` shrinks the
sample counts when ``--budget-seconds`` asks for a shorter run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from deepscope.errors import InputError
from deepscope.models import predict_logits
from deepscope.registry import Registry

if TYPE_CHECKING:
    from deepscope.audit.inputs import AuditInputs
    from deepscope.audit.result import SectionResult

__all__ = ["SECTIONS", "AuditConfig", "Costs", "SectionSpec", "register_section",
           "section_names"]


@dataclass(frozen=True)
class AuditConfig:
    """Settings of one audit run.

    Attributes
    ----------
    sections : tuple of str or None
        Sections to run (None: all registered ones).
    scale : float
        Multiplies every sample count (``--budget-seconds`` sets it below 1).
    seed : int
        Seed of every sampling step, attack and fit.
    write_repaired : str or None
        Where the repair preview writes its repaired checkpoint (``--write-repaired``).
    progress : bool
        Progress bars of the techniques themselves (the CLI shows one display instead).
    """

    sections: tuple[str, ...] | None = None
    scale: float = 1.0
    seed: int = 0
    write_repaired: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise InputError(f"scale must be in (0, 1], got {self.scale!r}")
        if self.sections is not None:
            known = section_names()
            unknown = [s for s in self.sections if s not in known]
            if unknown:
                raise InputError(f"unknown section(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(known)}")
            if not self.sections:
                raise InputError("--sections is empty; name at least one section")

    def count(self, base: int, *, low: int = 1, high: int | None = None) -> int:
        """``base`` scaled by :attr:`scale`, clipped to ``[low, high]``."""
        n = max(low, round(base * self.scale))
        return n if high is None else min(n, high)

    def cache_part(self) -> str:
        """The settings that change a section's numbers (part of its cache key)."""
        return f"scale={self.scale:.4f};seed={self.seed}"


@dataclass(frozen=True)
class Costs:
    """Measured per-sample costs of the model (seconds).

    Attributes
    ----------
    forward : float
        One sample through the model, batched, without gradients.
    gradient : float
        One sample's forward and backward pass (estimated as 3× forward).
    """

    forward: float
    gradient: float

    @classmethod
    def measure(cls, model: torch.nn.Module, x: torch.Tensor, *, n: int = 256) -> Costs:
        """Time a batched forward pass over up to ``n`` samples of ``x`` (after one warm-up)."""
        sample = x[:n]
        predict_logits(model, sample[:8])
        start = time.perf_counter()
        predict_logits(model, sample)
        per = (time.perf_counter() - start) / max(len(sample), 1)
        return cls(forward=per, gradient=3 * per)


Applies = Callable[["AuditInputs"], "str | None"]
Estimate = Callable[["AuditInputs", AuditConfig, Costs], float]
Compute = Callable[["AuditInputs", AuditConfig, dict[str, Any]], "SectionResult"]


@dataclass(frozen=True)
class SectionSpec:
    """One registered audit section."""

    name: str
    title: str
    applies: Applies
    estimate: Estimate
    compute: Compute
    needs: tuple[str, ...] = field(default_factory=tuple)


SECTIONS: Registry[SectionSpec] = Registry("audit section")


def register_section(name: str, title: str, *, applies: Applies, estimate: Estimate
                     ) -> Callable[[Compute], Compute]:
    """Register ``compute`` as the section ``name`` (the registration order is the report's)."""

    def decorator(compute: Compute) -> Compute:
        SECTIONS.register(name)(SectionSpec(name, title, applies, estimate, compute))
        return compute

    return decorator


def section_names() -> list[str]:
    """Registered section names, in report order (the section modules are imported first)."""
    import deepscope.audit.run  # noqa: F401  (registers the sections)

    return SECTIONS.names()
