"""Black boxes whose relevant features per region are known (the ground-truth tests).

- :class:`PiecewiseLinear` (:func:`piecewise_linear`): one gating feature splits the inputs into
  regions, each with its own positive-weight linear log-odds (the first, easy box).
- :class:`GatedLinear` (:func:`gated_linear`): several gates (region = which gates are open),
  *signed* weights, inputs in ``[low, 1]`` so that nullifying a feature (fill 0) always matters.
- :class:`SequenceRules` (:func:`sequence_rules`): int64 token windows (0 = padding / fill); the
  tokens at the gate offsets pick a rule, the rule reads 2-3 other offsets with signed weights.

In every box the class-1 log-odds is the region's linear function, so the truth is exact: the
relevant features of an input are the ones its region's rule reads (the gates themselves are
reported apart: ``relevant(x, gates=True)`` adds the open gates — the ones whose nullification
switches the input to another region). :func:`precision_table` runs explainers on
several boxes and returns top-k precision by ``|attribution|``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepscope.errors import InputError
from deepscope.explain.explanation import Explanation


@dataclass(frozen=True)
class PiecewiseLinear:
    """The black box and its truth.

    Attributes
    ----------
    weights : ndarray
        ``R×D`` log-odds weights per region (zero outside the relevant features).
    intercepts : ndarray
        ``R`` intercepts.
    gate : int
        The feature that decides the region (thresholds at ``r / R``).
    """

    weights: np.ndarray
    intercepts: np.ndarray
    gate: int

    kind = "tabular"

    @property
    def n_regions(self) -> int:
        return len(self.intercepts)

    def region(self, x: np.ndarray) -> np.ndarray:
        """Region of each row (inputs live in [0, 1]^D)."""
        r = np.floor(np.asarray(x)[:, self.gate] * self.n_regions).astype(np.int64)
        return np.clip(r, 0, self.n_regions - 1)

    def logit(self, x: np.ndarray) -> np.ndarray:
        r = self.region(x)
        return np.einsum("ij,ij->i", x, self.weights[r]) + self.intercepts[r]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Two-class probabilities ``[1 - p, p]`` with ``p = sigmoid(logit)``."""
        x = np.asarray(x, dtype=np.float64)
        p1 = 1.0 / (1.0 + np.exp(-self.logit(x)))
        return np.stack([1.0 - p1, p1], axis=1)

    def relevant(self, x: np.ndarray, gates: bool = False) -> np.ndarray:
        """``N×D`` bool: the truly relevant features of each row's region (plus the gate
        where nullifying it changes the region)."""
        rel = self.weights[self.region(x)] != 0
        return _add_gates(self, x, rel, (self.gate,)) if gates else rel

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` uniform inputs in [0, 1]^D."""
        return np.random.default_rng(seed).random((n, self.weights.shape[1]))


def piecewise_linear(
    n_features: int = 20,
    n_regions: int = 3,
    n_relevant: int = 3,
    *,
    weight_range: tuple[float, float] = (3.0, 6.0),
    seed: int = 0,
) -> PiecewiseLinear:
    """Random piecewise-linear black box; regions use disjoint relevant-feature sets."""
    if n_regions * n_relevant > n_features - 1:
        raise InputError("need n_regions * n_relevant < n_features (one feature is the gate)")
    rng = np.random.default_rng(seed)
    feats = rng.permutation(np.arange(1, n_features))
    weights = np.zeros((n_regions, n_features))
    for r in range(n_regions):
        idx = feats[r * n_relevant : (r + 1) * n_relevant]
        weights[r, idx] = rng.uniform(*weight_range, size=n_relevant)
    centre = weights.sum(axis=1) / 2  # roughly balanced classes in every region
    intercepts = -centre + np.linspace(-2.0, 2.0, n_regions)
    return PiecewiseLinear(weights=weights, intercepts=intercepts, gate=0)


def precision_recall(explanation: Explanation, relevant: np.ndarray, k: int | None = None,
                     by: str = "abs") -> tuple[float, float]:
    """Mean precision and recall of each row's top-k features against ``relevant``.

    ``k`` defaults to the number of relevant features of each row (then precision = recall).
    """
    relevant = np.asarray(relevant, dtype=bool)
    if relevant.shape != explanation.attributions.shape:
        raise InputError(
            f"relevant must be N×F like the attributions {explanation.attributions.shape}, "
            f"got {relevant.shape}"
        )
    n_rel = relevant.sum(axis=1)
    kk = int(n_rel.max()) if k is None else k
    top = explanation.top_features(kk, by=by)
    prec, rec = [], []
    for i in range(len(explanation)):
        ki = int(n_rel[i]) if k is None else k
        hits = relevant[i, top[i, :ki]].sum()
        prec.append(hits / max(ki, 1))
        rec.append(hits / max(int(n_rel[i]), 1))
    return float(np.mean(prec)), float(np.mean(rec))


def _add_gates(box, x: np.ndarray, rel: np.ndarray, gates: tuple[int, ...]) -> np.ndarray:
    """Mark the gates whose nullification (fill 0) changes a row's region."""
    x = np.asarray(x)
    region = box.region(x)
    for g in gates:
        off = x.copy()
        off[:, g] = 0
        rel[:, g] |= box.region(off) != region
    return rel


def _region_bits(open_gates: np.ndarray) -> np.ndarray:
    """Region id from an ``N×G`` bool matrix of open gates (gate g adds 2**g)."""
    return (open_gates.astype(np.int64) << np.arange(open_gates.shape[1])).sum(axis=1)


@dataclass(frozen=True)
class GatedLinear:
    """Tabular box: ``2**G`` regions from ``G`` gates, signed linear log-odds per region.

    Attributes
    ----------
    weights : ndarray
        ``R×D`` log-odds weights per region (zero outside the region's relevant features).
    intercepts : ndarray
        ``R`` intercepts.
    gates : tuple of int
        Gate features; gate ``g`` is open when ``x[gate] > threshold`` (nullified = closed).
    threshold : float
        Gate threshold (the middle of the sampling range).
    low : float
        Inputs are uniform in ``[low, 1]``.
    """

    weights: np.ndarray
    intercepts: np.ndarray
    gates: tuple[int, ...]
    threshold: float
    low: float

    kind = "tabular"

    def region(self, x: np.ndarray) -> np.ndarray:
        return _region_bits(np.asarray(x)[:, list(self.gates)] > self.threshold)

    def logit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        r = self.region(x)
        return np.einsum("ij,ij->i", x, self.weights[r]) + self.intercepts[r]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Two-class probabilities ``[1 - p, p]`` with ``p = sigmoid(logit)``."""
        p1 = 1.0 / (1.0 + np.exp(-self.logit(x)))
        return np.stack([1.0 - p1, p1], axis=1)

    def relevant(self, x: np.ndarray, gates: bool = False) -> np.ndarray:
        """``N×D`` bool: the features the region's rule reads (plus, if asked, the gates whose
        nullification changes the region: the open ones)."""
        rel = self.weights[self.region(x)] != 0
        return _add_gates(self, x, rel, self.gates) if gates else rel

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).uniform(self.low, 1.0, (n, self.weights.shape[1]))


def _signed_weights(rng, n: int, weight_range: tuple[float, float], signed: bool) -> np.ndarray:
    w = rng.uniform(*weight_range, size=n)
    if signed:  # both signs in every rule
        signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        w *= rng.permutation(signs)
    return w


def gated_linear(
    n_features: int = 20,
    n_gates: int = 2,
    n_relevant: int = 3,
    *,
    weight_range: tuple[float, float] = (2.0, 4.0),
    signed: bool = True,
    low: float = 0.3,
    seed: int = 0,
) -> GatedLinear:
    """Random gated box: features ``0..n_gates-1`` are the gates; each of the ``2**n_gates``
    regions reads its own ``n_relevant`` features (drawn at random, regions may share some)."""
    if n_gates < 1 or n_relevant < 1 or n_gates + n_relevant > n_features:
        raise InputError(
            f"need n_gates >= 1, n_relevant >= 1 and n_gates + n_relevant <= n_features, got "
            f"{n_gates}, {n_relevant}, {n_features}"
        )
    if not 0.0 <= low < 1.0:
        raise InputError(f"low must be in [0, 1), got {low}")
    rng = np.random.default_rng(seed)
    R = 2**n_gates
    weights = np.zeros((R, n_features))
    for r in range(R):
        idx = rng.choice(np.arange(n_gates, n_features), n_relevant, replace=False)
        weights[r, idx] = _signed_weights(rng, n_relevant, weight_range, signed)
    mid = (low + 1.0) / 2
    intercepts = -weights.sum(axis=1) * mid + rng.uniform(-1.0, 1.0, R)
    return GatedLinear(weights, intercepts, tuple(range(n_gates)), mid, low)


@dataclass(frozen=True)
class SequenceRules:
    """Sequence box on int64 windows of ``T`` tokens in ``1..V`` (0 = padding / fill).

    Gate ``g`` (an offset) is open when its token is odd (padding, 0, closes it); the open gates
    pick the rule; rule ``r`` adds ``weights[r, j] * score[x_j]`` over its offsets ``j``, where
    ``score`` maps every token to [0.5, 1] and padding to 0.
    """

    weights: np.ndarray  # R×T
    intercepts: np.ndarray  # R
    gates: tuple[int, ...]
    score: np.ndarray  # V+1, score[0] = 0

    kind = "sequence"

    def region(self, x: np.ndarray) -> np.ndarray:
        tok = np.asarray(x)[:, list(self.gates)].astype(np.int64)
        return _region_bits(tok % 2 == 1)

    def logit(self, x: np.ndarray) -> np.ndarray:
        tok = np.asarray(x).astype(np.int64)
        r = self.region(tok)
        return np.einsum("ij,ij->i", self.score[tok], self.weights[r]) + self.intercepts[r]

    predict_proba = GatedLinear.predict_proba
    relevant = GatedLinear.relevant

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        V = len(self.score) - 1
        return np.random.default_rng(seed).integers(1, V + 1, (n, self.weights.shape[1]))


def sequence_rules(
    length: int = 41,
    n_gates: int = 2,
    n_relevant: int = 3,
    *,
    vocab: int = 256,
    weight_range: tuple[float, float] = (2.0, 4.0),
    contiguous: bool = False,
    seed: int = 0,
) -> SequenceRules:
    """Random sequence box: the gates sit at the centre offset and the ones after it (the
    decision at a position depends on the token there); each rule reads ``n_relevant`` other
    offsets — scattered, or ``contiguous`` (a run, like the bytes of one instruction)."""
    if n_gates < 1 or n_relevant < 1 or n_gates + n_relevant > length:
        raise InputError(
            f"need n_gates >= 1, n_relevant >= 1 and n_gates + n_relevant <= length, got "
            f"{n_gates}, {n_relevant}, {length}"
        )
    rng = np.random.default_rng(seed)
    centre = length // 2
    gates = tuple((centre + g) % length for g in range(n_gates))
    free = np.setdiff1d(np.arange(length), gates)
    R = 2**n_gates
    weights = np.zeros((R, length))
    for r in range(R):
        if contiguous:
            runs = [s for s in range(length - n_relevant + 1)
                    if not set(range(s, s + n_relevant)) & set(gates)]
            s0 = runs[rng.integers(len(runs))]
            idx = np.arange(s0, s0 + n_relevant)
        else:
            idx = rng.choice(free, n_relevant, replace=False)
        weights[r, idx] = _signed_weights(rng, n_relevant, weight_range, True)
    score = np.concatenate([[0.0], rng.uniform(0.5, 1.0, vocab)])
    intercepts = -weights.sum(axis=1) * 0.75 + rng.uniform(-1.0, 1.0, R)
    return SequenceRules(weights, intercepts, gates, score)


Box = PiecewiseLinear | GatedLinear | SequenceRules


def default_boxes(seed: int = 0) -> dict[str, Box]:
    """The boxes of the ground-truth table: tabular with signed weights and 1-3 gates, and
    sequences (41-token windows) with scattered or contiguous relevant offsets."""
    return {
        "tabular: 2 gates, 3 signed": gated_linear(20, 2, 3, seed=seed),
        "tabular: 3 gates, 3 signed": gated_linear(24, 3, 3, seed=seed),
        "tabular: 1 gate, 5 signed": gated_linear(20, 1, 5, seed=seed),
        "sequence: 2 gates, 3 scattered": sequence_rules(41, 2, 3, seed=seed),
        "sequence: 2 gates, 3 contiguous": sequence_rules(41, 2, 3, contiguous=True,
                                                          seed=seed),
        "sequence: 1 gate, 2 scattered": sequence_rules(41, 1, 2, seed=seed),
    }


def precision_table(
    explainers: Mapping[str, Callable[[Box], Any]],
    boxes: Mapping[str, Box] | None = None,
    *,
    n_explain: int = 40,
    n_fit: int = 200,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Top-k precision by ``|attribution|`` of several explainers on several boxes.

    Parameters
    ----------
    explainers : mapping
        Name → factory ``make(box)`` returning an unfitted explainer (the factory picks the
        feature space from ``box.kind``: ``"tabular"`` or ``"sequence"``).
    boxes : mapping, optional
        Name → box (default :func:`default_boxes`).
    n_explain : int
        Inputs explained per box (the first ``n_explain`` of the fitting inputs).
    n_fit : int
        Inputs given to ``fit`` (global explainers learn from them; the others fit their
        feature space or background on them).
    seed : int
        Seed of the inputs.
    log : callable, optional
        Receives one line per (box, explainer).

    Returns
    -------
    dict
        ``box → explainer → {"precision", "precision_with_gates", "seconds_per_explanation",
        "queries_per_explanation", "k"}``: ``k`` is the number of relevant features of each
        input (precision = recall there); ``precision_with_gates`` counts the gates as relevant
        too (the open ones, whose nullification changes the region; ``k`` grows by their number).
    """
    boxes = default_boxes() if boxes is None else boxes
    table: dict[str, dict[str, dict[str, float]]] = {}
    for box_name, box in boxes.items():
        x = box.sample(n_fit, seed=seed + 1)
        xe = x[:n_explain]
        truth, truth_g = box.relevant(xe), box.relevant(xe, gates=True)
        table[box_name] = {}
        for name, make in explainers.items():
            ex = make(box)
            start = time.perf_counter()
            ex.fit(x, box.predict_proba, target=1)
            e = ex.explain(xe)
            secs = time.perf_counter() - start
            row = {
                "precision": precision_recall(e, truth)[0],
                "precision_with_gates": precision_recall(e, truth_g)[0],
                "seconds_per_explanation": secs / len(xe),
                "queries_per_explanation": (ex.black_box_.queries - 1) / len(xe),
                "k": float(truth.sum(axis=1).mean()),
            }
            table[box_name][name] = row
            if log is not None:
                log(f"[ground truth] {box_name} / {name}: P@k {row['precision']:.3f} "
                    f"(with gates {row['precision_with_gates']:.3f}), "
                    f"{row['seconds_per_explanation'] * 1000:.1f} ms, "
                    f"{row['queries_per_explanation']:.0f} queries per explanation")
    return table
