"""Input selection for repair: MODE's ``score = V · DHM`` and the baselines, in one registry.

A strategy ranks the *available* part of a labelled candidate pool and returns the indices of
``n`` inputs to add: ``strategy(ctx, n, available, rng, **params)``. ``ctx`` is a
:class:`SelectionContext`: the per-repair :class:`~deepscope.debug.analysis.PoolAnalysis`
(computed lazily and once, on the model *before* repair) plus the model being repaired this
round. Nothing is kept at module level but the registry.

Strategies (``STRATEGIES.names()``):

``mode``          the seed's method: top ``score = V · DHM`` over the whole available pool. For
                  an under-fitting bug the UF(1) and UF(2) scores are z-normalised and added
                  (UF(2) with a minus sign: avoid its red, cover its blue); UF(2) is used only
                  when both of its subsets have at least ``min_subset`` inputs. For an
                  over-fitting bug the OF DHM is used.
``random``        uniform over the available pool.
``random-label``  uniform over the available pool inputs of label ``L`` (then uniform).
``failing``       pool inputs the model gets wrong: those of ``L`` first, then the others, each
                  in random order (then uniform).
``deepgini``      highest Gini impurity ``1 - Σ p_k²`` first.
``auto``          deepscope's recommendation (see ``bench/results/mode.md``): inputs of ``L``
                  only, ranked by how unsure the model *being repaired* is about ``L``
                  (``1 - p_L``, recomputed each round on the remaining inputs of ``L`` only,
                  so it costs one forward pass over ~10 % of the pool), with a diversity term:
                  the candidates are clustered (k-means on their log-probabilities) and picks
                  go round-robin over clusters, most unsure first, so they do not pile up on
                  one confusion. Its parameters (``clusters``, ``fresh``, ``top_share``,
                  ``candidates``; see :func:`auto`) are the variants of the design ablation
                  (``python -m bench.mode_ablation``); pass them with ``select(..., **params)``
                  or ``repair(..., strategy_params={...})``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope.debug.analysis import PoolAnalysis, PoolContext
from deepscope.errors import InputError
from deepscope.models.cluster import kmeans
from deepscope.registry import Registry

__all__ = ["STRATEGIES", "PoolAnalysis", "PoolContext", "SelectionContext", "auto",
           "check_strategy", "fill", "names", "select"]

Strategy = Callable[..., np.ndarray]
STRATEGIES: Registry[Strategy] = Registry("selection strategy")


def names() -> list[str]:
    """Registered strategy names."""
    return STRATEGIES.names()


@dataclass(frozen=True, eq=False)
class SelectionContext:
    """What a strategy sees in one round: the pool analysis and the model being repaired.

    Attributes
    ----------
    analysis : PoolAnalysis
        The per-repair analysis (model before repair).
    current : nn.Module, optional
        The model being repaired (``None``: the analysed model, e.g. before the first round).
    """

    analysis: PoolAnalysis
    current: nn.Module | None = None

    @property
    def y(self) -> np.ndarray:
        """Pool labels."""
        return self.analysis.y

    @property
    def label(self) -> int:
        """The buggy label."""
        return self.analysis.label

    @property
    def num_classes(self) -> int:
        return self.analysis.num_classes

    def probs(self) -> np.ndarray:
        """Pool probabilities under the model before repair."""
        return self.analysis.probs()

    def dhm_scores(self) -> np.ndarray:
        """Per pool input, the summed z-scored ``V · DHM`` scores."""
        return self.analysis.dhm_scores()

    def current_probs(self, index: np.ndarray) -> np.ndarray:
        """Probabilities of pool inputs ``index`` under the model being repaired."""
        return self.analysis.current_probs(index, self.current)


def _top(order_key: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` candidates with the largest key (stable: earlier index first on ties)."""
    idx = np.flatnonzero(candidates)
    return idx[np.argsort(-order_key[idx], kind="stable")[:n]]


def fill(chosen: np.ndarray, n: int, available: np.ndarray, rng: np.random.Generator
         ) -> np.ndarray:
    """Top ``chosen`` up to ``n`` with uniform picks from the rest of ``available``."""
    if len(chosen) >= n:
        return chosen[:n]
    rest = available.copy()
    rest[chosen] = False
    extra = rng.permutation(np.flatnonzero(rest))[: n - len(chosen)]
    return np.concatenate([chosen, extra]).astype(np.int64)


_fill = fill  # the old private name


@STRATEGIES.register("mode")
def _mode(ctx: SelectionContext, n: int, available: np.ndarray, rng: np.random.Generator
          ) -> np.ndarray:
    return fill(_top(ctx.dhm_scores(), available, n), n, available, rng)


@STRATEGIES.register("random")
def _random(ctx: SelectionContext, n: int, available: np.ndarray, rng: np.random.Generator
            ) -> np.ndarray:
    return fill(np.zeros(0, np.int64), n, available, rng)


@STRATEGIES.register("random-label")
def _random_label(ctx: SelectionContext, n: int, available: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    of_label = np.flatnonzero(available & (ctx.y == ctx.label))
    return fill(rng.permutation(of_label)[:n], n, available, rng)


@STRATEGIES.register("failing")
def _failing(ctx: SelectionContext, n: int, available: np.ndarray, rng: np.random.Generator
             ) -> np.ndarray:
    wrong = ctx.probs().argmax(1) != ctx.y
    first = rng.permutation(np.flatnonzero(available & wrong & (ctx.y == ctx.label)))
    second = rng.permutation(np.flatnonzero(available & wrong & (ctx.y != ctx.label)))
    return fill(np.concatenate([first, second])[:n].astype(np.int64), n, available, rng)


@STRATEGIES.register("deepgini")
def _deepgini(ctx: SelectionContext, n: int, available: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
    gini = 1.0 - (ctx.probs() ** 2).sum(1)
    return fill(_top(gini, available, n), n, available, rng)


def _round_robin(queues: list[list[int]], n: int) -> list[int]:
    """Up to ``n`` items taken in turn from the front of each queue."""
    picks: list[int] = []
    while len(picks) < n and any(queues):
        for q in queues:
            if q and len(picks) < n:
                picks.append(int(q.pop(0)))
    return picks


@STRATEGIES.register("auto")
def auto(ctx: SelectionContext, n: int, available: np.ndarray, rng: np.random.Generator, *,
         clusters: int = 8, fresh: bool = True, top_share: float = 1.0,
         candidates: int | None = None) -> np.ndarray:
    """deepscope's recommended strategy (see the module docstring); defaults = ``auto``.

    Parameters
    ----------
    ctx, n, available, rng
        As for every strategy.
    clusters : int
        k of the k-means on the candidates' log-probabilities (round-robin over clusters).
    fresh : bool
        Uncertainty under the model being repaired (default) or under the original model.
    top_share : float
        Share of the ``n`` picks ranked by uncertainty; the rest is uniform over the label.
    candidates : int, optional
        Rank only a random subset of ``candidates · n`` inputs of the label.
    """
    cand = np.flatnonzero(available & (ctx.y == ctx.label))
    if len(cand) <= n:
        return fill(cand, n, available, rng)
    if candidates:
        cand = rng.permutation(cand)[: candidates * n]
    p = ctx.current_probs(cand) if fresh else ctx.probs()[cand]
    unsure = 1.0 - p[:, ctx.label]
    emb = torch.from_numpy(np.log(np.clip(p, 1e-6, 1.0))).float()
    k = int(min(clusters, len(cand)))
    _, assign = kmeans(emb, k, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
    assign = assign.numpy()
    queues = []
    for c in range(k):
        members = np.flatnonzero(assign == c)
        queues.append(list(members[np.argsort(-unsure[members], kind="stable")]))
    n_top = round(top_share * n)
    top = np.asarray(_round_robin(queues, n_top), dtype=np.int64)
    if n_top >= n:
        return cand[top]
    rest = np.setdiff1d(np.arange(len(cand)), top)
    return np.concatenate([cand[top], cand[rng.permutation(rest)[: n - n_top]]])


def check_strategy(strategy: str, params: dict[str, Any] | None = None) -> Strategy:
    """The registered strategy ``strategy``; raise InputError if it takes no such ``params``."""
    fn = STRATEGIES.get(strategy)
    if params:
        sig = inspect.signature(fn)
        try:
            sig.bind(None, 0, None, None, **params)
        except TypeError:
            known = [p for p in list(sig.parameters)[4:]]
            raise InputError(f"strategy {strategy!r} takes no parameter(s) {sorted(params)}; "
                             f"valid: {', '.join(known) or 'none'}") from None
    return fn


def select(strategy: str, ctx: PoolAnalysis | SelectionContext, n: int,
           available: np.ndarray, *, seed: int | np.random.Generator = 0,
           current: nn.Module | None = None, **params: Any) -> np.ndarray:
    """Indices of ``n`` distinct available pool inputs chosen by ``strategy``.

    Parameters
    ----------
    strategy : str
        A registered strategy name.
    ctx : PoolAnalysis or SelectionContext
        The pool analysis (``current`` then names the model being repaired) or a ready context.
    n : int
        How many inputs (capped at the number available).
    available : bool array
        Which pool inputs may be chosen.
    seed : int or numpy Generator
        Seeds the strategy's random choices.
    **params
        Strategy parameters (e.g. ``clusters=4`` for ``auto``).
    """
    fn = check_strategy(strategy, params)
    if isinstance(ctx, PoolAnalysis):
        ctx = SelectionContext(ctx, current)
    available = np.asarray(available, dtype=bool)
    n = int(min(n, available.sum()))
    if n <= 0:
        return np.zeros(0, np.int64)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = np.asarray(fn(ctx, n, available, rng, **params), dtype=np.int64)
    if len(out) != n or len(np.unique(out)) != n or not available[out].all():
        raise RuntimeError(f"strategy {strategy!r} returned an invalid selection")
    return out
