"""Explanation-guided patching of a byte tagger (LEMNA's "patching" use), against random edits.

LEMNA (Guo et al., CCS 2018, §6 and the ``lemna/code/patch.py`` of its public code) fixes the
errors of a function-start tagger with training samples crafted from the explanations of those
errors. What we read in that code, and do the same way:

* a **false negative** at position ``p`` (a function start the model misses) is explained for
  the class it wrongly chose, "no start" (class 0); its top-2 features are *changed* to the byte
  ``0x00`` (id 1; bytes are stored as value + 1), the byte at ``p`` is kept, the changed
  positions are labelled "no start" and the sample is added **3** times;
* a **false positive** at ``p`` is explained for class 1; its top-2 features are *nullified*
  (id 0, the fill of the explanation's perturbations), labelled "no start", **4** copies;
* then the model is trained further on the training data plus the crafted samples.

Where we differ (on purpose, stated in the results):

* the errors are taken from a **training-side pool** (e.g. the validation libraries of the
  training split), never from the held-out test libraries the patched model is measured on
  (LEMNA crafted from its test errors);
* the explained position itself is never among the changed features (LEMNA restores it for
  false negatives; for false positives nullifying it would only delete the error);
* the model is *fine-tuned* from its checkpoint briefly, on the crafted samples plus a replay
  sample of its training data, not retrained for 10 epochs, and its decision threshold is
  chosen again on the pool (``PatchSettings.recalibrate``), as the tagger's training chose it
  on its validation libraries — without that, the class-weighted fine-tuning alone moves the
  threshold (measured: FP 336 → 969, FN 551 → 316 with nothing crafted);
* the control (:func:`random_changes`) crafts exactly the same samples (same errors, same copies,
  same change) with 2 positions drawn at random from the non-padding bytes of the same window.

The explanations come in as a callable (:data:`ExplainFn`), so any explainer — DMM-MEN, LIME,
KernelSHAP, a gradient, a hand-made rule in a test — can drive the patching; this module imports
no explainer. :func:`patching_experiment` runs the whole comparison over several seeds and
returns a :class:`~deepscope.debug.patching_result.PatchingResult`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deepscope import models
from deepscope._seeds import numpy_rng
from deepscope._validate import check_int
from deepscope.debug.patching_result import ArmResult, ErrorCounts, PatchingResult
from deepscope.errors import InputError

__all__ = [
    "ARMS",
    "Errors",
    "ExplainFn",
    "PatchSettings",
    "craft",
    "error_counts",
    "explained_changes",
    "find_errors",
    "fine_tune",
    "patching_experiment",
    "random_changes",
]

#: ``explain(x, positions, classes, k) -> N×k`` positions of ``x`` (most important first) that
#: support class ``classes[i]`` at ``positions[i]`` of row ``x[i]`` (int64 N×T each).
ExplainFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]

FALSE_NEGATIVE, FALSE_POSITIVE = 0, 1
#: The ways of choosing the changed positions (see :func:`patching_experiment`).
ARMS = ("explained", "random", "unchanged")
KINDS = ("false negative", "false positive")


@dataclass(frozen=True)
class Errors:
    """The tagger's errors on a pool: row, position and kind (0 = false negative, 1 = false
    positive) of each, as int64 arrays of equal length."""

    rows: np.ndarray
    positions: np.ndarray
    kinds: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def count(self, kind: int) -> int:
        """Number of errors of ``kind``."""
        return int((self.kinds == kind).sum())

    def subset(self, index: np.ndarray) -> Errors:
        """The errors at ``index``."""
        return Errors(self.rows[index], self.positions[index], self.kinds[index])

    def capped(self, max_each: int, *, seed: int = 0) -> Errors:
        """At most ``max_each`` errors of each kind, drawn at random with ``seed`` (order
        kept)."""
        max_each = check_int("max_each", max_each, low=1)
        keep = []
        for kind in (FALSE_NEGATIVE, FALSE_POSITIVE):
            idx = np.flatnonzero(self.kinds == kind)
            if len(idx) > max_each:
                idx = np.sort(numpy_rng(seed, 11, kind).choice(idx, max_each, replace=False))
            keep.append(idx)
        return self.subset(np.concatenate(keep))


@dataclass(frozen=True)
class PatchSettings:
    """How samples are crafted and how the model is fine-tuned (LEMNA's values by default).

    Attributes
    ----------
    copies_fn, copies_fp : int
        Copies of each crafted false-negative / false-positive sample (LEMNA: 3 and 4).
    n_changed : int
        Features changed per sample (LEMNA: the top 2).
    fn_value, fp_value : int
        The id written at the changed positions (LEMNA: 1 = byte 0x00 for false negatives,
        0 = nullified for false positives).
    window : int
        Width of the window around the error that random changes are drawn from (LEMNA's
        explanation window: 41 bytes).
    epochs, lr, batch_size : int, float, int
        Fine-tuning: Adam with a cosine schedule (:func:`deepscope.models.fit`).
    class_weight : tuple of float
        Per-class loss weights of the fine-tuning (the zoo taggers' recipe: ``(1, 3)``).
    recalibrate : bool
        After fine-tuning, choose the F1-optimal decision threshold again on the pool (as the
        tagger's own training did on its validation libraries,
        :func:`deepscope.models.tagging.calibrate_threshold`); without it, the class weights of
        the fine-tuning move the threshold the checkpoint had calibrated, for every arm alike.
    """

    copies_fn: int = 3
    copies_fp: int = 4
    n_changed: int = 2
    fn_value: int = 1
    fp_value: int = 0
    window: int = 41
    epochs: int = 1
    lr: float = 3e-4
    batch_size: int = 64
    class_weight: tuple[float, float] = (1.0, 3.0)
    recalibrate: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _numpy_ids(x: Any, what: str) -> np.ndarray:
    arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2 or arr.dtype != np.int64:
        raise InputError(f"{what} must be int64 N×T ids, got {arr.dtype} {arr.shape}")
    return arr


def _xy(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = (data.x, data.y) if hasattr(data, "x") else data
    x, y = _numpy_ids(x, f"{what}.x"), _numpy_ids(y, f"{what}.y")
    if x.shape != y.shape:
        raise InputError(f"{what}: per-position labels {y.shape} must match the inputs {x.shape}")
    return x, y


def _predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    logits = models.predict_logits(model, torch.from_numpy(x), batch_size=batch_size)
    return logits.argmax(-1).numpy()


def find_errors(model: nn.Module, pool: Any, *, max_each: int | None = None, seed: int = 0
                ) -> Errors:
    """False negatives and false positives of ``model`` on ``pool`` (padding left out).

    Parameters
    ----------
    model : torch.nn.Module
        A tagger (int64 N×T → N×T×2 logits; the decision is the argmax).
    pool : Dataset or (x, y)
        Int64 inputs and per-position labels of the training side (never the test split).
    max_each : int, optional
        Keep at most this many errors of each kind, drawn at random with ``seed``.
    seed : int
        Seed of that draw.
    """
    x, y = _xy(pool, "pool")
    pred = _predict(model, x)
    real = x != 0
    parts = []
    for kind, wrong in ((FALSE_NEGATIVE, (y == 1) & (pred == 0)),
                        (FALSE_POSITIVE, (y == 0) & (pred == 1))):
        rows, pos = np.nonzero(wrong & real)
        parts.append((rows, pos, np.full(len(rows), kind)))
    errors = Errors(*(np.concatenate(p).astype(np.int64) for p in zip(*parts, strict=True)))
    return errors if max_each is None else errors.capped(max_each, seed=seed)


def _window_bounds(p: np.ndarray, width: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    half = width // 2
    return np.maximum(p - half, 0), np.minimum(p + half + 1, t)


def explained_changes(x: np.ndarray, errors: Errors, explain: ExplainFn, n_changed: int = 2
                      ) -> np.ndarray:
    """The top-``n_changed`` explained positions of each error (the error's own position left
    out): class 0 is explained for false negatives, class 1 for false positives (as LEMNA).

    Returns an int64 ``len(errors)×n_changed`` array of positions in ``x``'s rows.
    """
    x = _numpy_ids(x, "x")
    if len(errors) == 0:
        return np.zeros((0, n_changed), np.int64)
    classes = np.where(errors.kinds == FALSE_NEGATIVE, 0, 1)
    top = np.asarray(explain(x[errors.rows], errors.positions, classes, n_changed + 1))
    if top.shape != (len(errors), n_changed + 1):
        raise InputError(f"the explain callable must return {len(errors)}×{n_changed + 1} "
                         f"positions, got {top.shape}")
    t = x.shape[1]
    if top.min() < 0 or top.max() >= t:
        raise InputError(f"the explain callable returned positions outside 0..{t - 1}")
    out = np.empty((len(errors), n_changed), np.int64)
    for i, row in enumerate(top.astype(np.int64)):
        _, first = np.unique(row, return_index=True)
        row = row[np.sort(first)]
        row = row[row != errors.positions[i]]
        if len(row) < n_changed:
            raise InputError(f"the explain callable must return {n_changed + 1} distinct "
                             f"positions per error; error {i} got {top[i].tolist()}")
        out[i] = row[:n_changed]
    return out


def random_changes(x: np.ndarray, errors: Errors, n_changed: int = 2, *, window: int = 41,
                   seed: int = 0) -> np.ndarray:
    """``n_changed`` distinct positions per error, drawn uniformly from the non-padding bytes of
    the ``window`` around it (the error's own position left out): the control of patching."""
    x = _numpy_ids(x, "x")
    rng = numpy_rng(seed, 12)
    lo, hi = _window_bounds(errors.positions, window, x.shape[1])
    out = np.empty((len(errors), n_changed), np.int64)
    for i, (r, p) in enumerate(zip(errors.rows, errors.positions, strict=True)):
        cand = np.arange(lo[i], hi[i])
        cand = cand[(cand != p) & (x[r, cand] != 0)]
        if len(cand) < n_changed:  # a window nearly all padding: take any other position
            cand = np.arange(lo[i], hi[i])
            cand = cand[cand != p]
        out[i] = rng.choice(cand, n_changed, replace=False)
    return out


def craft(x: np.ndarray, y: np.ndarray, errors: Errors, changed: np.ndarray,
          settings: PatchSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The crafted training samples: each error's row with its ``changed`` positions rewritten.

    False negatives: ``changed`` ← ``settings.fn_value``, ``settings.copies_fn`` copies;
    false positives: ``changed`` ← ``settings.fp_value``, ``settings.copies_fp`` copies. The
    changed positions are labelled 0 ("no start"); every other byte and label is the row's own.
    """
    s = settings or PatchSettings()
    x, y = _numpy_ids(x, "x"), _numpy_ids(y, "y")
    changed = np.asarray(changed, dtype=np.int64)
    if changed.shape[0] != len(errors):
        raise InputError(f"changed must have one row per error ({len(errors)}), got "
                         f"{changed.shape[0]}")
    xs, ys = [], []
    for i in range(len(errors)):
        r, kind = errors.rows[i], errors.kinds[i]
        xi, yi = x[r].copy(), y[r].copy()
        xi[changed[i]] = s.fn_value if kind == FALSE_NEGATIVE else s.fp_value
        yi[changed[i]] = 0
        copies = s.copies_fn if kind == FALSE_NEGATIVE else s.copies_fp
        xs.extend([xi] * copies)
        ys.extend([yi] * copies)
    if not xs:
        return np.zeros((0, x.shape[1]), np.int64), np.zeros((0, x.shape[1]), np.int64)
    return np.stack(xs), np.stack(ys)


def fine_tune(model: nn.Module, replay: tuple[np.ndarray, np.ndarray],
              crafted: tuple[np.ndarray, np.ndarray], settings: PatchSettings | None = None, *,
              calibration: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0,
              progress: bool = False) -> nn.Module:
    """A copy of ``model`` trained further on ``replay`` + ``crafted`` (``model`` untouched);
    its decision threshold is chosen again on ``calibration`` when
    ``settings.recalibrate`` and ``calibration`` is given."""
    s = settings or PatchSettings()
    x = np.concatenate([replay[0], crafted[0]])
    y = np.concatenate([replay[1], crafted[1]])
    tuned = copy.deepcopy(model)
    models.fit(tuned, (torch.from_numpy(x), torch.from_numpy(y)), epochs=s.epochs, lr=s.lr,
               batch_size=s.batch_size, class_weight=list(s.class_weight), patience=None,
               seed=seed, progress=progress)
    if s.recalibrate and calibration is not None:
        models.tagging.calibrate_threshold(
            tuned, (torch.from_numpy(calibration[0]), torch.from_numpy(calibration[1])))
    return tuned


def error_counts(model: nn.Module, data: Any) -> ErrorCounts:
    """False positives, false negatives, true positives and F1 of ``model`` on ``data``."""
    x, y = _xy(data, "data")
    ev = models.evaluate(model, (torch.from_numpy(x), torch.from_numpy(y)))
    conf = ev.confusion
    return ErrorCounts(fp=int(conf[0, 1]), fn=int(conf[1, 0]), tp=int(conf[1, 1]),
                       precision=float(ev.precision), recall=float(ev.recall), f1=float(ev.f1))


def patching_experiment(
    model: nn.Module, pool: Any, replay: Any, test: Any, explain: ExplainFn, *,
    seeds: Sequence[int] = (0, 1, 2), settings: PatchSettings | None = None,
    max_errors: int | None = None, explainer: str = "", arms: Sequence[str] = ARMS[:2],
    progress: bool = True, log: Callable[[str], None] | None = None,
) -> PatchingResult:
    """Patch ``model`` from explained errors and from random edits; measure both on ``test``.

    Parameters
    ----------
    model : torch.nn.Module
        The trained tagger (left unchanged; every arm fine-tunes a copy).
    pool : Dataset or (x, y)
        Training-side windows whose errors are explained and crafted into samples; the
        decision threshold of every fine-tuned copy is chosen on it again
        (``settings.recalibrate``).
    replay : Dataset or (x, y)
        Training windows mixed into every fine-tuning (the same for every arm).
    test : Dataset or (x, y)
        Held-out windows (e.g. the held-out libraries) the arms are measured on.
    explain : ExplainFn
        Top positions of an error's decision (see :data:`ExplainFn`). Called once: the
        explanations are the same for every seed.
    seeds : sequence of int
        One fine-tuning per seed and arm; the random arm also draws its positions with it.
        Differences are paired by seed.
    settings : PatchSettings, optional
        Copies, changes and fine-tuning settings (LEMNA's by default).
    max_errors : int, optional
        Explain at most this many errors of each kind (drawn with the first seed).
    explainer : str
        Name of the explainer behind ``explain``, recorded in the result.
    arms : sequence of str
        Of :data:`ARMS`: ``"explained"`` (the top explained positions changed), ``"random"``
        (random window positions changed) and ``"unchanged"`` (the same copies, nothing
        changed: what the error windows alone do).
    progress : bool
        Progress bar over the fine-tunings.
    log : callable, optional
        Receives one line per step.
    """
    s = settings or PatchSettings()
    seeds = [check_int("seed", v, low=0) for v in seeds]
    if not seeds:
        raise InputError("seeds must name at least one seed, e.g. seeds=(0, 1, 2)")
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise InputError(f"arms must be some of {list(ARMS)}, got {list(arms)}")
    say = log or (lambda _m: None)
    px, py = _xy(pool, "pool")
    rx, ry = _xy(replay, "replay")
    test_xy = _xy(test, "test")
    before = error_counts(model, test_xy)
    found = find_errors(model, (px, py))
    errors = found if max_errors is None else found.capped(max_errors, seed=seeds[0])
    say(f"{errors.count(FALSE_NEGATIVE)} false negatives and {errors.count(FALSE_POSITIVE)} "
        f"false positives to explain; held-out before: FP {before.fp}, FN {before.fn}, "
        f"F1 {before.f1:.4f}")
    if len(errors) == 0:
        raise InputError("the model makes no error on the pool: there is nothing to patch")
    explained = explained_changes(px, errors, explain, s.n_changed)
    say(f"explained {len(errors)} errors")
    results: list[ArmResult] = []
    jobs = [(seed, arm) for seed in seeds for arm in arms]
    for seed, arm in tqdm(jobs, desc="fine-tuning", disable=not progress, leave=False):
        if arm == "explained":
            changed = explained
        elif arm == "random":
            changed = random_changes(px, errors, s.n_changed, window=s.window, seed=seed)
        else:
            changed = np.zeros((len(errors), 0), np.int64)
        crafted = craft(px, py, errors, changed, s)
        tuned = fine_tune(model, (rx, ry), crafted, s, calibration=(px, py), seed=seed)
        counts = error_counts(tuned, test_xy)
        say(f"seed {seed} {arm}: FP {counts.fp}, FN {counts.fn}, F1 {counts.f1:.4f}")
        results.append(ArmResult(arm=arm, seed=seed, n_crafted=len(crafted[0]), counts=counts))
    return PatchingResult(before=before, arms=tuple(results), n_fn=errors.count(FALSE_NEGATIVE),
                          n_fp=errors.count(FALSE_POSITIVE), n_replay=len(rx),
                          settings=s.to_dict(), explainer=explainer,
                          extras={"pool_fn": found.count(FALSE_NEGATIVE),
                                  "pool_fp": found.count(FALSE_POSITIVE)},
                          explained_positions=explained, errors=np.stack(
                              [errors.rows, errors.positions, errors.kinds], axis=1))
