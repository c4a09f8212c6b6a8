"""Result objects of :func:`deepscope.debug.patching.patching_experiment`.

:class:`PatchingResult` holds the held-out error counts before patching and after each
fine-tuning (arm × seed), and pairs the arms by seed: ``paired()`` gives, per metric, the
per-seed differences *explained − random* with their mean and a 95 % t-interval over the seeds
(negative FP / FN / FP + FN differences and a non-negative F1 difference mean patching from
explanations did better than random edits of the same samples).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from deepscope._jsonable import to_jsonable
from deepscope.protocol import Persistent

__all__ = ["ArmResult", "ErrorCounts", "PatchingResult"]

#: compared metrics: false positives, false negatives, their sum (``errors``) and F1
METRICS = ("fp", "fn", "errors", "f1")


@dataclass(frozen=True)
class ErrorCounts:
    """Per-position errors of a tagger on one data set (padding left out)."""

    fp: int
    fn: int
    tp: int
    precision: float
    recall: float
    f1: float

    @property
    def errors(self) -> int:
        """False positives plus false negatives (the threshold trades one for the other)."""
        return self.fp + self.fn

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return asdict(self)


@dataclass(frozen=True)
class ArmResult:
    """One fine-tuning: ``arm`` ("explained" or "random"), its seed, the number of crafted
    samples and the held-out counts after it."""

    arm: str
    seed: int
    n_crafted: int
    counts: ErrorCounts

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy (the counts flattened in)."""
        return {"arm": self.arm, "seed": self.seed, "n_crafted": self.n_crafted,
                **self.counts.to_dict()}


def _interval(d: np.ndarray) -> tuple[float, float]:
    if len(d) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


@dataclass(frozen=True, eq=False)
class PatchingResult(Persistent):
    """Held-out FP / FN / F1 before patching and after each arm and seed.

    Attributes
    ----------
    before : ErrorCounts
        The model before any fine-tuning.
    arms : tuple of ArmResult
    n_fn, n_fp : int
        Explained errors of the pool (crafted into ``3·n_fn + 4·n_fp`` samples by default).
    n_replay : int
        Training windows mixed into every fine-tuning.
    settings : dict
        :class:`~deepscope.debug.patching.PatchSettings` as a dict.
    explainer : str
        What produced the explanations.
    explained_positions : ndarray
        ``n_errors×n_changed`` positions changed in the explained arm.
    errors : ndarray
        ``n_errors×3``: pool row, position and kind (0 = false negative, 1 = false positive).
    extras : dict
        Anything else the caller records (timings, data sizes), JSON-able.
    """

    _format: ClassVar[str] = "patching-result"

    before: ErrorCounts
    arms: tuple[ArmResult, ...]
    n_fn: int
    n_fp: int
    n_replay: int
    settings: dict[str, Any]
    explainer: str
    explained_positions: np.ndarray
    errors: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        """The seeds, in run order."""
        return sorted({a.seed for a in self.arms})

    def arm(self, name: str) -> list[ArmResult]:
        """The results of arm ``name``, one per seed in :attr:`seeds` order."""
        by_seed = {a.seed: a for a in self.arms if a.arm == name}
        return [by_seed[s] for s in self.seeds if s in by_seed]

    def paired(self, a: str = "explained", b: str = "random") -> dict[str, dict[str, Any]]:
        """Per metric: per-seed ``a − b`` differences, their mean and 95 % t-interval, and the
        means of ``a`` and ``b``."""
        ra, rb = {r.seed: r for r in self.arm(a)}, {r.seed: r for r in self.arm(b)}
        common = [s for s in self.seeds if s in ra and s in rb]
        out = {}
        for m in METRICS:
            va = np.array([getattr(ra[s].counts, m) for s in common], dtype=np.float64)
            vb = np.array([getattr(rb[s].counts, m) for s in common], dtype=np.float64)
            d = va - vb
            out[m] = {"seeds": common, "differences": d.tolist(),
                      "mean_difference": float(d.mean()) if len(d) else float("nan"),
                      "ci95": _interval(d), f"mean_{a}": float(va.mean()) if len(va) else None,
                      f"mean_{b}": float(vb.mean()) if len(vb) else None}
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary: settings, counts before, every arm and the paired differences."""
        return to_jsonable({
            "explainer": self.explainer, "settings": self.settings, "n_fn": self.n_fn,
            "n_fp": self.n_fp, "n_replay": self.n_replay, "before": self.before.to_dict(),
            "arms": [a.to_dict() for a in self.arms], "paired": self.paired(),
            "extras": self.extras,
        })

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"before": self.before.to_dict(), "arms": [a.to_dict() for a in self.arms],
                "n_fn": self.n_fn, "n_fp": self.n_fp, "n_replay": self.n_replay,
                "settings": to_jsonable(self.settings), "explainer": self.explainer,
                "extras": to_jsonable(self.extras)}
        return meta, {"explained_positions": self.explained_positions, "errors": self.errors}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> PatchingResult:
        arms = []
        for a in meta["arms"]:
            a = dict(a)
            head = {k: a.pop(k) for k in ("arm", "seed", "n_crafted")}
            arms.append(ArmResult(counts=ErrorCounts(**a), **head))
        return cls(before=ErrorCounts(**meta["before"]), arms=tuple(arms), n_fn=int(meta["n_fn"]),
                   n_fp=int(meta["n_fp"]), n_replay=int(meta["n_replay"]),
                   settings=dict(meta["settings"]), explainer=str(meta["explainer"]),
                   explained_positions=arrays["explained_positions"], errors=arrays["errors"],
                   extras=dict(meta.get("extras") or {}))
