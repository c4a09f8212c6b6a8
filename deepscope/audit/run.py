"""Running an audit: the registered sections in order, each estimated, timed and cached.

:class:`Audit` takes the prepared inputs (:func:`deepscope.audit.inputs.prepare`) and an
:class:`~deepscope.audit.spec.AuditConfig`. :meth:`Audit.plan` says, before any work, which
sections run, which do not apply (and why) and how long each should take, from the model's
measured cost per sample. :meth:`Audit.run` computes them in order; with a ``cache_dir`` every
finished section is saved there (atomically) under a key made of the model's weights, the
data's content and the settings, and a re-run with the same key loads it instead of computing it
again — an interrupted audit resumes where it stopped. A section that raises a
:class:`~deepscope.errors.DeepscopeError` (e.g. too few correctly classified inputs) is recorded
as skipped with that message; other errors propagate.

Example
-------
>>> inputs = prepare(loaded, data, train=train)                            # doctest: +SKIP
>>> result = Audit(inputs, AuditConfig(sections=("model",)), cache_dir=d).run()  # doctest: +SKIP
>>> result.summary()["accuracy"]                                            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepscope.audit.inputs import AuditInputs
from deepscope.audit.result import AuditResult, SectionResult
from deepscope.audit.spec import SECTIONS, AuditConfig, Costs, SectionSpec
from deepscope.errors import DeepscopeError, InputError

__all__ = ["Audit", "PlannedStep", "budget_scale"]

#: The section modules, imported in this order: they register their sections, so this is the
#: report's order.
SECTION_MODULES = ("section_model", "section_mode", "section_robustness", "section_detection",
                   "section_explain")
for _module in SECTION_MODULES:
    importlib.import_module(f"deepscope.audit.{_module}")

#: Cache file format of the sections (bump to invalidate old caches).
CACHE_VERSION = "2"


@dataclass(frozen=True)
class PlannedStep:
    """One section of the plan: its spec, why it does not apply (None: it runs), its estimate
    in seconds, and whether a cached result will be reused."""

    spec: SectionSpec
    reason: str | None
    estimate: float
    cached: bool


Event = Callable[[str, PlannedStep, SectionResult | None], None]


def budget_scale(estimate: float, budget_seconds: float | None) -> float:
    """The sample-count scale that fits ``estimate`` seconds (at scale 1) into the budget."""
    if budget_seconds is None:
        return 1.0
    if budget_seconds <= 0:
        raise InputError(f"--budget-seconds must be positive, got {budget_seconds}")
    return max(0.05, min(1.0, budget_seconds / max(estimate, 1e-9)))


class Audit:
    """One audit run over the registered sections (see the module docstring).

    Parameters
    ----------
    inputs : AuditInputs
        The model and its data roles.
    config : AuditConfig
        Sections, scale, seed, ``write_repaired``.
    cache_dir : path, optional
        Where finished sections are cached (and found again on a re-run).
    costs : Costs, optional
        Measured per-sample costs (default: measured on the test role).
    """

    def __init__(self, inputs: AuditInputs, config: AuditConfig | None = None, *,
                 cache_dir: str | Path | None = None, costs: Costs | None = None) -> None:
        self.inputs = inputs
        self.config = config or AuditConfig()
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        if self.config.write_repaired and Path(self.config.write_repaired).exists():
            raise InputError(f"{self.config.write_repaired} already exists; --write-repaired "
                             "does not overwrite files")
        self.costs = costs or Costs.measure(inputs.model, inputs.test.x)

    def _key(self, spec: SectionSpec) -> str:
        extra = f";write={self.config.write_repaired}" if spec.name == "repair" else ""
        raw = f"{CACHE_VERSION};{spec.name};{self.inputs.key};{self.config.cache_part()}{extra}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _cache_path(self, spec: SectionSpec) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{spec.name}.npz"

    def _cached(self, spec: SectionSpec) -> SectionResult | None:
        path = self._cache_path(spec)
        if path is None or not path.exists():
            return None
        try:
            res = SectionResult.load(path)
        except DeepscopeError:
            return None  # an unreadable cache entry is recomputed (and replaced)
        return res if res.key == self._key(spec) else None

    def plan(self) -> list[PlannedStep]:
        """Every selected section with its applicability, time estimate and cache state."""
        names = self.config.sections or tuple(SECTIONS.names())
        steps = []
        for name in SECTIONS.names():
            if name not in names:
                continue
            spec = SECTIONS.get(name)
            reason = spec.applies(self.inputs)
            est = 0.0 if reason else float(spec.estimate(self.inputs, self.config, self.costs))
            steps.append(PlannedStep(spec, reason, est, self._cached(spec) is not None))
        return steps

    def _compute(self, step: PlannedStep, memo: dict[str, Any]) -> SectionResult:
        spec = step.spec
        if step.reason:
            return SectionResult.skipped(spec.name, step.reason)
        try:
            return spec.compute(self.inputs, self.config, memo)
        except DeepscopeError as exc:
            return SectionResult.skipped(spec.name, str(exc).rstrip("."))

    def run(self, on_event: Event | None = None) -> AuditResult:
        """Compute (or load from the cache) every planned section, in order.

        Parameters
        ----------
        on_event : callable, optional
            ``on_event(kind, step, result)`` with kind ``"start"`` (result None), ``"done"``
            or ``"cached"``: the CLI's progress display.
        """
        t0 = time.perf_counter()
        memo: dict[str, Any] = {}
        results: dict[str, SectionResult] = {}
        for step in self.plan():
            cached = self._cached(step.spec) if step.cached else None
            if cached is not None:
                results[step.spec.name] = cached
                if on_event:
                    on_event("cached", step, cached)
                continue
            if on_event:
                on_event("start", step, None)
            start = time.perf_counter()
            res = self._compute(step, memo).with_timing(
                seconds=time.perf_counter() - start, estimate=step.estimate,
                key=self._key(step.spec))
            path = self._cache_path(step.spec)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                res.save(path, overwrite=True)
            results[step.spec.name] = res
            if on_event:
                on_event("done", step, res)
        return AuditResult(model=self.inputs.model_dict(), data=self.inputs.data_dict(),
                           sections=results, seconds=time.perf_counter() - t0)
