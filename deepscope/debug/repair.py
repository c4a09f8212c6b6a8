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

The analysis (feature models, heat maps, DHMs, pool scores) is done once, on the input model,
by :class:`~deepscope.debug.selection.PoolContext`; the per-round selection reuses it. Without
``validation`` a seeded, stratified 10 % of the pool is held out for it (and never selected).
With ``checkpoint_dir`` the state is written atomically after every round, and a new call with
the same arguments continues after the last finished round.
"""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deepscope._atomic import atomic_write
from deepscope.data import Dataset, stratified_split
from deepscope.debug.selection import STRATEGIES, PoolContext, select
from deepscope.errors import InputError
from deepscope.models import evaluate, fit

__all__ = ["RepairResult", "RepairRound", "repair"]

STATE_FILE = "repair_state.pt"


@dataclass(frozen=True)
class RepairRound:
    """One round of repair (round 0 is the model before repair)."""

    round: int
    samples_used: int
    model_acc: float
    label_acc: float
    seconds: float
    selection_seconds: float
    train_seconds: float
    test_model_acc: float | None = None
    test_label_acc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class RepairResult:
    """The repaired model (a copy) and how repair went."""

    model: nn.Module
    history: tuple[RepairRound, ...]
    label: int
    kind: str
    strategy: str
    budget: int
    target: float
    fixed: bool
    samples_used: int
    samples_to_fix: int | None
    analysis_seconds: float
    selection_seconds: float
    train_seconds: float
    selected: np.ndarray
    analysis: dict[str, Any]

    @property
    def cost_ratio(self) -> float:
        """(analysis + selection seconds) / fine-tuning seconds."""
        return (self.analysis_seconds + self.selection_seconds) / max(self.train_seconds, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (without the model and the selected indices)."""
        return {"label": self.label, "kind": self.kind, "strategy": self.strategy,
                "budget": self.budget, "target": self.target, "fixed": self.fixed,
                "samples_used": self.samples_used, "samples_to_fix": self.samples_to_fix,
                "analysis_seconds": self.analysis_seconds,
                "selection_seconds": self.selection_seconds,
                "train_seconds": self.train_seconds, "cost_ratio": self.cost_ratio,
                "history": [r.to_dict() for r in self.history], "analysis": self.analysis}


def _int(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _concat(parts: list[Dataset], like: Dataset) -> Dataset:
    x = torch.cat([p.x for p in parts])
    y = torch.cat([p.y for p in parts])
    return Dataset(x=x, y=y, classes=like.classes, name=like.name, split="repair")


def _measure(model: nn.Module, ds: Dataset | None, label: int) -> tuple[float | None, float | None]:
    if ds is None:
        return None, None
    ev = evaluate(model, ds)
    return ev.accuracy, float(ev.per_label[label])


def _fingerprint(**kw: Any) -> str:
    return json.dumps(kw, sort_keys=True, default=str)


def _load_state(path: Path, fingerprint: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        raise InputError(
            f"{path} holds the state of a repair with other arguments; use another "
            "checkpoint_dir or delete it to start over")
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def repair(model: nn.Module, bug: Any, pool: Dataset, budget: int = 20000, *,
           strategy: str = "auto", seed: int = 0, batch: int = 2000,
           selected_share: float = 0.25, train: Dataset | None = None,
           validation: Dataset | None = None, test: Dataset | None = None,
           epochs_per_round: int = 1, lr: float = 5e-4, batch_size: int = 128,
           replay: float = 1.0, target: float | None = None, until_fixed: bool = True,
           layer: str | None = None, checkpoint_dir: str | Path | None = None,
           on_round: Callable[[RepairRound], None] | None = None,
           context: PoolContext | None = None, progress: bool = True) -> RepairResult:
    """Repair ``bug`` of ``model`` with inputs selected from ``pool``.

    Parameters
    ----------
    model : nn.Module
        The buggy model; never modified (a deep copy is fine-tuned).
    bug : Bug or BugRecipe
        Anything with ``.label`` and ``.kind`` (``"underfit"`` / ``"overfit"``).
    pool : Dataset
        Labelled bug-fixing pool to select from.
    budget : int
        Maximum number of pool inputs added (default 20,000).
    strategy : str
        One of :func:`deepscope.debug.selection.names` (``mode``, ``random``, ``random-label``,
        ``failing``, ``deepgini``, ``auto``).
    seed : int
        Seeds selection, replay and fine-tuning.
    batch : int
        Inputs added per round; ``selected_share`` of them chosen by the strategy.
    train, validation, test : Dataset, optional
        Original training data (replay, analysis), stopping data, reporting data.
    epochs_per_round, lr, batch_size, replay : fine-tuning settings (replay = replay size / batch).
    target : float, optional
        Validation label accuracy that counts as fixed (default: see module docstring).
    until_fixed : bool
        Stop at the first fixed round (default); ``False`` spends the whole budget.
    layer : str, optional
        Force the analysed layer of ``mode`` (default: automatic choice).
    checkpoint_dir : path, optional
        Folder for the resumable state (written atomically after every round).
    on_round : callable, optional
        Called with each finished :class:`RepairRound` (after its state is saved).
    context : PoolContext, optional
        A ready analysis of ``model`` on this ``pool`` and bug to reuse (e.g. the one a report
        drew its heat maps from); only valid without an automatic validation hold-out.
    progress : bool
        Show a progress bar over rounds.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    label, kind = getattr(bug, "label", None), getattr(bug, "kind", None)
    if kind not in ("underfit", "overfit"):
        raise InputError(f"bug must have .kind 'underfit' or 'overfit', got {kind!r}")
    if not isinstance(pool, Dataset):
        raise InputError(f"pool must be a deepscope Dataset, got {type(pool).__name__}")
    if not isinstance(label, (int, np.integer)) or not 0 <= label < pool.num_classes:
        raise InputError(f"bug label must be in [0, {pool.num_classes}), got {label!r}")
    if strategy not in STRATEGIES:
        STRATEGIES.get(strategy)  # raises the helpful RegistryError
    budget, batch = _int(budget, "budget"), _int(batch, "batch")
    epochs_per_round = _int(epochs_per_round, "epochs_per_round")
    if not 0 < selected_share <= 1:
        raise InputError(f"selected_share must be in (0, 1], got {selected_share!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"seed must be an int, got {seed!r}")
    label = int(label)
    if validation is None:
        pool, validation = stratified_split(pool, [0.9, 0.1], seed=seed,
                                            names=("pool", "validation"))
    repaired = copy.deepcopy(model)
    ev0 = evaluate(repaired, validation)
    if target is None:
        others = np.delete(ev0.per_label, label)
        target = float(min(np.nanmean(others) - 0.03, 0.95))
    analysis_data = validation if train is None else _concat([train, validation], pool)
    if context is not None:
        if (context.model is not model or context.pool is not pool or context.label != label
                or context.kind != kind):
            raise InputError("context was made for another model, pool or bug; pass the "
                             "same objects (and an explicit validation set)")
        ctx = context
    else:
        ctx = PoolContext(model, label, kind, pool, analysis_data, layer=layer, seed=seed,
                          batch_size=512)

    fingerprint = _fingerprint(label=label, kind=kind, strategy=strategy, budget=budget,
                               seed=seed, batch=batch, share=selected_share, n_pool=len(pool),
                               epochs=epochs_per_round, lr=lr, replay=replay,
                               until_fixed=until_fixed, target=target)
    state_path = Path(checkpoint_dir) / STATE_FILE if checkpoint_dir is not None else None
    if state_path is not None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
    state = _load_state(state_path, fingerprint) if state_path is not None else None
    used = np.zeros(len(pool), dtype=bool)
    order: list[int] = []
    history: list[RepairRound] = []
    if state is not None:
        repaired.load_state_dict(state["model"])
        order = [int(i) for i in state["order"]]
        used[order] = True
        history = [RepairRound(**r) for r in state["history"]]
    else:
        t_acc, t_lab = _measure(repaired, test, label)
        history.append(RepairRound(0, 0, ev0.accuracy, float(ev0.per_label[label]), 0.0, 0.0,
                                   0.0, t_acc, t_lab))

    def is_fixed(r: RepairRound) -> bool:
        return r.label_acc >= target

    n_rounds = -(-budget // batch)
    bar = tqdm(total=n_rounds, initial=len(history) - 1, desc=f"repair ({strategy})",
               disable=not progress, leave=False)
    try:
        while (len(order) < budget and used.sum() < len(pool)
               and not (until_fixed and is_fixed(history[-1]))):
            rnd = len(history)
            start = time.perf_counter()
            n = min(batch, budget - len(order))
            n_sel = max(1, round(selected_share * n))
            analysis_before = ctx.seconds
            ctx.current = repaired
            picked = select(strategy, ctx, n_sel, ~used, seed=seed * 100003 + rnd)
            used[picked] = True
            rest = select("random", ctx, n - len(picked), ~used, seed=seed * 100003 + rnd + 7)
            used[rest] = True
            new = np.concatenate([picked, rest])
            sel_seconds = time.perf_counter() - start - (ctx.seconds - analysis_before)
            parts = [pool.subset(torch.from_numpy(new))]
            n_replay = round(replay * len(new))
            if n_replay:
                g = np.random.default_rng(seed * 7919 + rnd)
                n_train = len(train) if train is not None else 0
                sources = n_train + len(order)
                if sources:
                    draw = g.choice(sources, size=min(n_replay, sources), replace=False)
                    from_train = draw[draw < n_train]
                    from_old = np.asarray(order, np.int64)[draw[draw >= n_train] - n_train]
                    if len(from_train):
                        parts.append(train.subset(torch.from_numpy(np.sort(from_train))))
                    if len(from_old):
                        parts.append(pool.subset(torch.from_numpy(np.sort(from_old))))
            t0 = time.perf_counter()
            fit(repaired, _concat(parts, pool), epochs=epochs_per_round,
                seed=seed * 1009 + rnd, lr=lr, batch_size=batch_size, patience=None,
                progress=False)
            train_seconds = time.perf_counter() - t0
            order.extend(int(i) for i in new)
            ev = evaluate(repaired, validation)
            t_acc, t_lab = _measure(repaired, test, label)
            rec = RepairRound(rnd, len(order), ev.accuracy, float(ev.per_label[label]),
                              time.perf_counter() - start, sel_seconds, train_seconds,
                              t_acc, t_lab)
            history.append(rec)
            if state_path is not None:
                _save_state(state_path, {
                    "fingerprint": fingerprint, "model": repaired.state_dict(),
                    "order": torch.tensor(order, dtype=torch.int64),
                    "history": [r.to_dict() for r in history]})
            bar.update(1)
            if on_round is not None:
                on_round(rec)
    finally:
        bar.close()
    repaired.eval()
    fixed_rounds = [r for r in history if is_fixed(r)]
    return RepairResult(
        model=repaired, history=tuple(history), label=label, kind=kind, strategy=strategy,
        budget=budget, target=target, fixed=bool(fixed_rounds),
        samples_used=len(order),
        samples_to_fix=fixed_rounds[0].samples_used if fixed_rounds else None,
        analysis_seconds=ctx.seconds,
        selection_seconds=float(sum(r.selection_seconds for r in history)),
        train_seconds=float(sum(r.train_seconds for r in history)),
        selected=np.asarray(order, dtype=np.int64), analysis=ctx.to_dict())
