"""MODE's repair loop: rounds of input selection + cheap fine-tuning.

Each round adds ``batch`` pool inputs (by default "500+1500" as in the seed: ``selected_share``
= 25 % chosen by the strategy, the rest uniformly at random from the remaining pool) and
fine-tunes a copy of the model for ``epochs_per_round`` epochs on the new inputs plus an
equal-size *replay* drawn uniformly from ``train`` ∪ earlier picks (so old labels are not
forgotten and the cost per round stays constant). After each round the model and the buggy
label are evaluated on ``validation``: the bug counts as **fixed** when the label's validation
accuracy reaches ``target`` (default: the mean validation accuracy of the other labels before
repair, minus 3 points, capped at 0.95). The loop stops when fixed (``until_fixed``) or when the
budget is spent.

One round = :meth:`_Repair.select` → :meth:`_Repair.training_data` (new inputs + replay) →
:meth:`_Repair.train` → :meth:`_Repair.evaluate` → :meth:`_Repair.checkpoint`; the settings are
one :class:`~deepscope.debug.repair_config.RepairConfig`.

The analysis (feature models, heat maps, DHMs, pool scores) is done once, on the input model,
by a :class:`~deepscope.debug.analysis.PoolAnalysis`; the per-round selection reuses it. Without
``validation`` a seeded, stratified 10 % of the pool is held out for it (and never selected).
With ``checkpoint_dir`` the state (weights, picks, history) is written atomically after every
round as one ``.npz`` (no pickle), and a new call with the same arguments continues after the
last finished round.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deepscope._persist import read_npz, write_npz
from deepscope.data import Dataset, stratified_split
from deepscope.debug.analysis import PoolAnalysis
from deepscope.debug.repair_config import RepairConfig
from deepscope.debug.repair_result import RepairResult, RepairRound
from deepscope.debug.repair_seeds import round_seeds
from deepscope.debug.selection import SelectionContext, select
from deepscope.errors import InputError
from deepscope.models import evaluate, fit

__all__ = ["RepairConfig", "RepairResult", "RepairRound", "repair"]

STATE_FILE = "repair_state.npz"
#: the state file of earlier versions (a torch pickle): refused, never read
_LEGACY_STATE_FILE = "repair_state.pt"
_STATE_FORMAT = "repair-state"
_WEIGHT = "weight:"


def _concat(parts: list[Dataset], like: Dataset) -> Dataset:
    x = torch.cat([p.x for p in parts])
    y = torch.cat([p.y for p in parts])
    return Dataset(x=x, y=y, classes=like.classes, name=like.name, split="repair")


def _measure(model: nn.Module, ds: Dataset | None, label: int) -> tuple[float | None, float | None]:
    if ds is None:
        return None, None
    ev = evaluate(model, ds)
    return ev.accuracy, float(ev.per_label[label])


def _check_inputs(model: Any, bug: Any, pool: Any) -> tuple[int, str]:
    """The bug's ``(label, kind)``, after checking the model, the bug and the pool."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    label, kind = getattr(bug, "label", None), getattr(bug, "kind", None)
    if kind not in ("underfit", "overfit"):
        raise InputError(f"bug must have .kind 'underfit' or 'overfit', got {kind!r}")
    if not isinstance(pool, Dataset):
        raise InputError(f"pool must be a deepscope Dataset, got {type(pool).__name__}")
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or not (
            0 <= label < pool.num_classes):
        raise InputError(f"bug label must be in [0, {pool.num_classes}), got {label!r}")
    return int(label), kind


def _default_target(per_label: np.ndarray, label: int) -> float:
    others = np.delete(per_label, label)
    return float(min(np.nanmean(others) - 0.03, 0.95))


class _State:
    """The resumable state of a repair in ``checkpoint_dir`` (one atomic ``.npz``)."""

    def __init__(self, folder: str | Path | None, fingerprint: str) -> None:
        self.path = Path(folder) / STATE_FILE if folder is not None else None
        self.fingerprint = fingerprint
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> tuple[dict[str, torch.Tensor], list[int], list[RepairRound]] | None:
        if self.path is not None and not self.path.exists() and (
                self.path.parent / _LEGACY_STATE_FILE).exists():
            raise InputError(
                f"{self.path.parent / _LEGACY_STATE_FILE} is the state of a repair by an older "
                "deepscope, which cannot be resumed (it is never unpickled); delete it or use "
                "another checkpoint_dir")
        if self.path is None or not self.path.exists():
            return None
        meta, arrays = read_npz(self.path, _STATE_FORMAT)
        if meta.get("fingerprint") != self.fingerprint:
            raise InputError(
                f"{self.path} holds the state of a repair with other arguments; use another "
                "checkpoint_dir or delete it to start over")
        weights = {k[len(_WEIGHT):]: torch.from_numpy(v) for k, v in arrays.items()
                   if k.startswith(_WEIGHT)}
        return (weights, [int(i) for i in arrays["order"]],
                [RepairRound(**r) for r in meta["history"]])

    def save(self, model: nn.Module, order: list[int], history: list[RepairRound]) -> None:
        if self.path is None:
            return
        arrays: dict[str, Any] = {_WEIGHT + k: v for k, v in model.state_dict().items()}
        arrays["order"] = np.asarray(order, dtype=np.int64)
        write_npz(self.path, _STATE_FORMAT, {"fingerprint": self.fingerprint,
                                             "history": [r.to_dict() for r in history]},
                  arrays, overwrite=True)


class _Repair:
    """One repair run: the fine-tuned copy, the picks so far and the history."""

    def __init__(self, model: nn.Module, label: int, kind: str, pool: Dataset,
                 cfg: RepairConfig, *, train: Dataset | None, validation: Dataset,
                 test: Dataset | None, analysis: PoolAnalysis, target: float) -> None:
        self.label, self.kind, self.pool, self.cfg = label, kind, pool, cfg
        self.train_data, self.validation, self.test = train, validation, test
        self.analysis, self.target = analysis, target
        self.model = copy.deepcopy(model)
        self.used = np.zeros(len(pool), dtype=bool)
        self.order: list[int] = []
        self.history: list[RepairRound] = []

    def start(self, state: _State, before: Callable[[], RepairRound]) -> None:
        """Continue from ``state`` when it holds a finished round, else start at ``before()``."""
        saved = state.load()
        if saved is None:
            self.history.append(before())
            return
        weights, self.order, self.history = saved
        self.model.load_state_dict(weights)
        self.used[self.order] = True

    def fixed(self, r: RepairRound) -> bool:
        return r.label_acc >= self.target

    def should_continue(self) -> bool:
        return (len(self.order) < self.cfg.budget and self.used.sum() < len(self.pool)
                and not (self.cfg.until_fixed and self.fixed(self.history[-1])))

    def select(self, seeds: dict[str, Any]) -> np.ndarray:
        """The round's new pool inputs: the strategy's share, then uniform picks."""
        n, n_sel = self.cfg.round_sizes(len(self.order))
        ctx = SelectionContext(self.analysis, self.model)
        picked = select(self.cfg.strategy, ctx, n_sel, ~self.used, seed=seeds["select"],
                        **self.cfg.strategy_params)
        self.used[picked] = True
        rest = select("random", ctx, n - len(picked), ~self.used, seed=seeds["fill"])
        self.used[rest] = True
        return np.concatenate([picked, rest])

    def training_data(self, new: np.ndarray, rng: np.random.Generator) -> Dataset:
        """The new inputs plus a uniform replay from train ∪ earlier picks."""
        parts = [self.pool.subset(torch.from_numpy(new))]
        n_replay = round(self.cfg.replay * len(new))
        n_train = len(self.train_data) if self.train_data is not None else 0
        sources = n_train + len(self.order)
        if n_replay and sources:
            draw = rng.choice(sources, size=min(n_replay, sources), replace=False)
            from_train = draw[draw < n_train]
            from_old = np.asarray(self.order, np.int64)[draw[draw >= n_train] - n_train]
            if len(from_train):
                parts.append(self.train_data.subset(torch.from_numpy(np.sort(from_train))))
            if len(from_old):
                parts.append(self.pool.subset(torch.from_numpy(np.sort(from_old))))
        return _concat(parts, self.pool)

    def train(self, data: Dataset, seed: int) -> float:
        """Fine-tune the copy on ``data`` (``models.fit``: train mode inside, eval after)."""
        t0 = time.perf_counter()
        fit(self.model, data, epochs=self.cfg.epochs_per_round, seed=seed, lr=self.cfg.lr,
            batch_size=self.cfg.batch_size, patience=None, progress=False)
        return time.perf_counter() - t0

    def evaluate(self, rnd: int, start: float, sel_seconds: float, train_seconds: float
                 ) -> RepairRound:
        ev = evaluate(self.model, self.validation)
        t_acc, t_lab = _measure(self.model, self.test, self.label)
        return RepairRound(rnd, len(self.order), ev.accuracy, float(ev.per_label[self.label]),
                           time.perf_counter() - start, sel_seconds, train_seconds, t_acc, t_lab)

    def run_round(self) -> RepairRound:
        """select → train on new + replay → evaluate; returns the finished round."""
        rnd = len(self.history)
        seeds = round_seeds(self.cfg.seed, rnd)
        start = time.perf_counter()
        analysis_before = self.analysis.seconds
        new = self.select(seeds)
        sel_seconds = time.perf_counter() - start - (self.analysis.seconds - analysis_before)
        data = self.training_data(new, seeds["replay"])
        train_seconds = self.train(data, seeds["fit"])
        self.order.extend(int(i) for i in new)
        rec = self.evaluate(rnd, start, sel_seconds, train_seconds)
        self.history.append(rec)
        return rec

    def result(self) -> RepairResult:
        self.model.eval()  # the repaired copy is handed back for inference (fit leaves it so too)
        fixed_rounds = [r for r in self.history if self.fixed(r)]
        return RepairResult(
            model=self.model, history=tuple(self.history), label=self.label, kind=self.kind,
            strategy=self.cfg.strategy, budget=self.cfg.budget, target=self.target,
            fixed=bool(fixed_rounds), samples_used=len(self.order),
            samples_to_fix=fixed_rounds[0].samples_used if fixed_rounds else None,
            analysis_seconds=self.analysis.seconds,
            selection_seconds=float(sum(r.selection_seconds for r in self.history)),
            train_seconds=float(sum(r.train_seconds for r in self.history)),
            selected=np.asarray(self.order, dtype=np.int64), analysis=self.analysis.to_dict())


def _fingerprint(cfg: RepairConfig, label: int, kind: str, n_pool: int, target: float) -> str:
    kw = dict(label=label, kind=kind, strategy=cfg.strategy, budget=cfg.budget, seed=cfg.seed,
              batch=cfg.batch, share=cfg.selected_share, n_pool=n_pool,
              epochs=cfg.epochs_per_round, lr=cfg.lr, replay=cfg.replay,
              until_fixed=cfg.until_fixed, target=target)
    if cfg.strategy_params:
        kw["strategy_params"] = cfg.strategy_params
    return json.dumps(kw, sort_keys=True, default=str)


def _analysis(model: nn.Module, label: int, kind: str, pool: Dataset, data: Dataset,
              cfg: RepairConfig, context: PoolAnalysis | None) -> PoolAnalysis:
    if context is None:
        return PoolAnalysis(model, label, kind, pool, data, layer=cfg.layer, seed=cfg.seed,
                            batch_size=512)
    if not context.matches(model, pool, label, kind):
        raise InputError("context was made for another model, pool or bug; pass the "
                         "same objects (and an explicit validation set)")
    return context


def _config(budget: int | None, config: RepairConfig | None, settings: dict[str, Any]
            ) -> RepairConfig:
    if config is None:
        return RepairConfig.from_settings(budget, **settings)
    if not isinstance(config, RepairConfig):
        raise InputError(f"config must be a RepairConfig, got {type(config).__name__}")
    if settings:
        raise InputError(f"pass the settings either in config or as keywords, not both "
                         f"(got config and {sorted(settings)})")
    return config if budget is None else RepairConfig.from_settings(
        budget, **{**config.to_dict(), "budget": budget})


def repair(model: nn.Module, bug: Any, pool: Dataset, budget: int | None = None, *,
           config: RepairConfig | None = None, train: Dataset | None = None,
           validation: Dataset | None = None, test: Dataset | None = None,
           checkpoint_dir: str | Path | None = None,
           on_round: Callable[[RepairRound], None] | None = None,
           context: PoolAnalysis | None = None, progress: bool = True,
           **settings: Any) -> RepairResult:
    """Repair ``bug`` of ``model`` with inputs selected from ``pool``.

    Parameters
    ----------
    model : nn.Module
        The buggy model; never modified (a deep copy is fine-tuned).
    bug : Bug or InjectedBug
        Anything with ``.label`` and ``.kind`` (``"underfit"`` / ``"overfit"``).
    pool : Dataset
        Labelled bug-fixing pool to select from.
    budget : int, optional
        Maximum number of pool inputs added (default 20,000, or ``config.budget``).
    config : RepairConfig, optional
        All tuning settings at once; otherwise give them as keywords.
    train, validation, test : Dataset, optional
        Original training data (replay, analysis), stopping data, reporting data.
    checkpoint_dir : path, optional
        Folder for the resumable state (written atomically after every round).
    on_round : callable, optional
        Called with each finished :class:`RepairRound` (after its state is saved).
    context : PoolAnalysis, optional
        A ready analysis of ``model`` on this ``pool`` and bug to reuse (e.g. the one a report
        drew its heat maps from); only valid without an automatic validation hold-out.
    progress : bool
        Show a progress bar over rounds.
    **settings
        The fields of :class:`RepairConfig` as keywords: ``strategy="auto"``, ``seed=0``,
        ``batch=2000``, ``selected_share=0.25``, ``epochs_per_round=1``, ``lr=5e-4``,
        ``batch_size=128``, ``replay=1.0``, ``target=None``, ``until_fixed=True``,
        ``layer=None``, ``strategy_params={}``.

    Returns
    -------
    RepairResult
    """
    label, kind = _check_inputs(model, bug, pool)
    cfg = _config(budget, config, settings)
    if validation is None:
        pool, validation = stratified_split(pool, [0.9, 0.1], seed=cfg.seed,
                                            names=("pool", "validation"))
    ev0 = evaluate(model, validation)
    target = cfg.target if cfg.target is not None else _default_target(ev0.per_label, label)
    data = validation if train is None else _concat([train, validation], pool)
    run = _Repair(model, label, kind, pool, cfg, train=train, validation=validation, test=test,
                  analysis=_analysis(model, label, kind, pool, data, cfg, context),
                  target=target)
    state = _State(checkpoint_dir, _fingerprint(cfg, label, kind, len(pool), target))

    def before() -> RepairRound:
        return RepairRound(0, 0, ev0.accuracy, float(ev0.per_label[label]), 0.0, 0.0, 0.0,
                           *_measure(model, test, label))

    run.start(state, before)
    with tqdm(total=cfg.rounds, initial=len(run.history) - 1, desc=f"repair ({cfg.strategy})",
              disable=not progress, leave=False) as bar:
        while run.should_continue():
            rec = run.run_round()
            state.save(run.model, run.order, run.history)
            bar.update(1)
            if on_round is not None:
                on_round(rec)
    return run.result()
