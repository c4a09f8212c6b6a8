"""Input selection for repair: MODE's ``score = V · DHM`` and the baselines, in one registry.

A strategy ranks the *available* part of a labelled candidate pool and returns the indices of
``n`` inputs to add. Each strategy reads what it needs from a :class:`PoolContext`, which runs
the (expensive) analysis lazily and only once: feature models + heat maps + DHMs (``mode``,
``auto``) and one forward pass over the pool (probabilities, and DHM scores from the features
at the analysed layer). The analysis uses the model as it was *before* repair.

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
                  one confusion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope.debug import heatmaps
from deepscope.debug.feature_models import FeatureModels, extract
from deepscope.errors import InputError
from deepscope.models import hooks
from deepscope.models.bugs import kmeans
from deepscope.models.execution import model_device, model_dtype, preserved_state
from deepscope.models.train import predict_logits, predict_proba
from deepscope.registry import Registry

__all__ = ["STRATEGIES", "PoolContext", "names", "select"]

Strategy = Callable[["PoolContext", int, np.ndarray, np.random.Generator], np.ndarray]
STRATEGIES: Registry[Strategy] = Registry("selection strategy")


def names() -> list[str]:
    """Registered strategy names."""
    return STRATEGIES.names()


def _z(v: np.ndarray) -> np.ndarray:
    s = v.std()
    return (v - v.mean()) / (s if s > 0 else 1.0)


class PoolContext:
    """What strategies may look at, computed lazily and once.

    Parameters
    ----------
    model : nn.Module
        The buggy model (before repair).
    label, kind : int, str
        The bug.
    pool : Dataset
        Labelled candidate pool.
    analysis : Dataset
        Labelled data for the feature models and subset heat maps (e.g. train ∪ validation).
    layer : str, optional
        Force the analysed layer.
    seed : int
        Seed of the feature-model fits.
    batch_size : int
        Forward-pass batch size.
    min_subset : int
        Smallest subset used for a subset heat map.
    """

    def __init__(self, model: nn.Module, label: int, kind: str, pool: Any, analysis: Any, *,
                 layer: str | None = None, seed: int = 0, batch_size: int = 512,
                 min_subset: int = 10, max_samples: int = 3000) -> None:
        self.model, self.label, self.kind = model, int(label), kind
        self.pool, self.analysis = pool, analysis
        self.layer, self.seed, self.batch_size = layer, seed, batch_size
        self.min_subset, self.max_samples = min_subset, max_samples
        self.y = pool.y.cpu().numpy()
        self.num_classes = int(pool.num_classes)
        self.seconds = 0.0
        self._probs: np.ndarray | None = None
        self._scores: np.ndarray | None = None
        self.features: FeatureModels | None = None
        self.dhms: dict[str, heatmaps.DHM] = {}
        self.label_heatmaps: np.ndarray | None = None
        self.current: nn.Module | None = None  # the model being repaired (set by repair)

    # -- analysis ---------------------------------------------------------------------------
    def _fit_dhms(self) -> None:
        fm = FeatureModels(layer=self.layer, seed=self.seed, max_samples=self.max_samples,
                           batch_size=self.batch_size).fit(self.model, self.analysis)
        self.features = fm
        self.label_heatmaps = heatmaps.label_heatmaps(fm.weights_)
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(self.analysis), generator=g)[: 2 * self.max_samples]
        x, y = self.analysis.x[order], self.analysis.y[order].cpu()
        feats = extract(self.model, fm.layer_, x, batch_size=self.batch_size)
        # the subsets follow the *model's* predictions (its bug), not the feature model's
        pred = predict_logits(self.model, x, batch_size=self.batch_size).argmax(1).cpu()
        L = self.label
        correct = (y == L) & (pred == L)
        if self.kind == "underfit":
            self.dhms["uf1"] = heatmaps.DHM("uf1", heatmaps.uf1(self.label_heatmaps, L), 1.0,
                                            {})
            mis_as = (y != L) & (pred == L)
            sizes = {"misclassified_as_L": int(mis_as.sum()), "correct_L": int(correct.sum())}
            if min(sizes.values()) >= self.min_subset:
                hm = heatmaps.subset_heatmaps(feats, y, self.num_classes,
                                              {"mis": mis_as, "correct": correct},
                                              seed=self.seed)
                self.dhms["uf2"] = heatmaps.DHM("uf2", heatmaps.uf2(hm["mis"], hm["correct"]),
                                                -1.0, sizes)
        else:
            subsets = {f"L_as_{k}": (y == L) & (pred == k) for k in range(self.num_classes)
                       if k != L}
            subsets = {k: m for k, m in subsets.items() if int(m.sum()) >= 1}
            sizes = {k: int(m.sum()) for k, m in subsets.items()}
            sizes["correct_L"] = int(correct.sum())
            if not subsets or sizes["correct_L"] == 0:
                raise InputError(
                    f"label {L} is never (or always) misclassified in the analysis data, so "
                    "the over-fitting DHM is undefined; is this really an over-fitting bug?")
            hm = heatmaps.subset_heatmaps(feats, y, self.num_classes,
                                          {**subsets, "correct": correct}, seed=self.seed)
            mis = [hm[k] for k in subsets if k in hm]
            self.dhms["of"] = heatmaps.DHM("of", heatmaps.of(mis, hm["correct"]), 1.0, sizes)

    def _pool_pass(self, with_dhm: bool) -> None:
        start = time.perf_counter()
        if with_dhm and not self.dhms:
            self._fit_dhms()
        dev, dtype = model_device(self.model), model_dtype(self.model)
        x = self.pool.x
        probs, scores = [], []
        if with_dhm:
            prefix, suffix = hooks.split(self.model, self.features.layer_)
            dirs = torch.from_numpy(np.stack([d.sign * d.vector for d in self.dhms.values()])
                                    ).float()
        with preserved_state(self.model), torch.no_grad():
            self.model.eval()
            for i in range(0, len(x), self.batch_size):
                xb = x[i:i + self.batch_size].to(device=dev, dtype=dtype)
                if with_dhm:
                    h = prefix(xb)
                    logits = suffix(h)
                    scores.append(h.flatten(1).to("cpu", torch.float32) @ dirs.T)
                else:
                    logits = self.model(xb)
                probs.append(torch.softmax(logits.float(), 1).cpu())
        self._probs = torch.cat(probs).numpy()
        if with_dhm:
            s = torch.cat(scores).numpy()
            self._scores = sum(_z(s[:, j]) for j in range(s.shape[1]))
        self.seconds += time.perf_counter() - start

    def probs(self) -> np.ndarray:
        """N×K softmax probabilities of the pool under the (pre-repair) model."""
        if self._probs is None:
            self._pool_pass(with_dhm=False)
        return self._probs

    def dhm_scores(self) -> np.ndarray:
        """Per pool input, the (z-normalised, summed) ``V · DHM`` scores of the bug's DHMs."""
        if self._scores is None:
            self._pool_pass(with_dhm=True)
        return self._scores

    def current_probs(self, index: np.ndarray) -> np.ndarray:
        """Probabilities of pool inputs ``index`` under the model *being repaired* (or the
        original model before the first round)."""
        model = self.current if self.current is not None else self.model
        x = self.pool.x[torch.from_numpy(np.asarray(index, dtype=np.int64))]
        if len(x) == 0:
            return np.zeros((0, self.num_classes))
        return predict_proba(model, x, batch_size=self.batch_size).float().cpu().numpy()

    def to_dict(self) -> dict[str, Any]:
        """Analysis summary (feature models and DHMs), for reports."""
        out: dict[str, Any] = {"seconds": self.seconds}
        if self.features is not None:
            out["feature_models"] = self.features.to_dict()
            out["dhms"] = {k: d.to_dict() for k, d in self.dhms.items()}
        return out


def _top(order_key: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` candidates with the largest key (stable: earlier index first on ties)."""
    idx = np.flatnonzero(candidates)
    return idx[np.argsort(-order_key[idx], kind="stable")[:n]]


def _fill(chosen: np.ndarray, n: int, available: np.ndarray, rng: np.random.Generator
          ) -> np.ndarray:
    """Top ``chosen`` up to ``n`` with uniform picks from the rest of ``available``."""
    if len(chosen) >= n:
        return chosen[:n]
    rest = available.copy()
    rest[chosen] = False
    extra = rng.permutation(np.flatnonzero(rest))[: n - len(chosen)]
    return np.concatenate([chosen, extra]).astype(np.int64)


@STRATEGIES.register("mode")
def _mode(ctx: PoolContext, n: int, available: np.ndarray, rng: np.random.Generator
          ) -> np.ndarray:
    return _fill(_top(ctx.dhm_scores(), available, n), n, available, rng)


@STRATEGIES.register("random")
def _random(ctx: PoolContext, n: int, available: np.ndarray, rng: np.random.Generator
            ) -> np.ndarray:
    return _fill(np.zeros(0, np.int64), n, available, rng)


@STRATEGIES.register("random-label")
def _random_label(ctx: PoolContext, n: int, available: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    of_label = np.flatnonzero(available & (ctx.y == ctx.label))
    return _fill(rng.permutation(of_label)[:n], n, available, rng)


@STRATEGIES.register("failing")
def _failing(ctx: PoolContext, n: int, available: np.ndarray, rng: np.random.Generator
             ) -> np.ndarray:
    wrong = ctx.probs().argmax(1) != ctx.y
    first = rng.permutation(np.flatnonzero(available & wrong & (ctx.y == ctx.label)))
    second = rng.permutation(np.flatnonzero(available & wrong & (ctx.y != ctx.label)))
    return _fill(np.concatenate([first, second])[:n].astype(np.int64), n, available, rng)


@STRATEGIES.register("deepgini")
def _deepgini(ctx: PoolContext, n: int, available: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
    gini = 1.0 - (ctx.probs() ** 2).sum(1)
    return _fill(_top(gini, available, n), n, available, rng)


@STRATEGIES.register("auto")
def _auto(ctx: PoolContext, n: int, available: np.ndarray, rng: np.random.Generator,
          clusters: int = 8) -> np.ndarray:
    cand = np.flatnonzero(available & (ctx.y == ctx.label))
    if len(cand) <= n:
        return _fill(cand, n, available, rng)
    p = ctx.current_probs(cand)  # uncertainty under the model being repaired, this round
    unsure = 1.0 - p[:, ctx.label]
    emb = torch.from_numpy(np.log(np.clip(p, 1e-6, 1.0))).float()
    k = int(min(clusters, len(cand)))
    _, assign = kmeans(emb, k, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
    assign = assign.numpy()
    queues = []
    for c in range(k):
        members = np.flatnonzero(assign == c)
        queues.append(list(cand[members[np.argsort(-unsure[members], kind="stable")]]))
    picks: list[int] = []
    while len(picks) < n:
        for q in queues:
            if q and len(picks) < n:
                picks.append(int(q.pop(0)))
    return np.asarray(picks, dtype=np.int64)


def select(strategy: str, ctx: PoolContext, n: int, available: np.ndarray, *,
           seed: int = 0) -> np.ndarray:
    """Indices of ``n`` distinct available pool inputs chosen by ``strategy``."""
    fn = STRATEGIES.get(strategy)
    available = np.asarray(available, dtype=bool)
    n = int(min(n, available.sum()))
    if n <= 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    out = np.asarray(fn(ctx, n, available, rng), dtype=np.int64)
    if len(out) != n or len(np.unique(out)) != n or not available[out].all():
        raise RuntimeError(f"strategy {strategy!r} returned an invalid selection")
    return out
