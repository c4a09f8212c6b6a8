"""The per-repair analysis of a candidate pool: feature models, heat maps, DHMs, pool scores.

:class:`PoolAnalysis` (old name ``PoolContext``) is an explicit object made once per repair (or
per report) and passed to the selection strategies; it computes lazily and only once what the
strategies ask for, always with the model as it was *before* repair:

* ``probs()``: one forward pass over the pool (softmax probabilities);
* ``dhm_scores()``: feature models + heat maps + the bug's DHMs on the analysis data, then one
  forward pass over the pool that reads the features at the analysed layer and scores them
  along every DHM (``V · DHM``, z-normalised per DHM and summed).

What changes between rounds (the model being repaired) is not stored here: it travels in a
:class:`~deepscope.debug.selection.SelectionContext`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope.debug import heatmaps
from deepscope.debug.feature_models import FeatureModels, extract, layer_features
from deepscope.errors import InputError
from deepscope.models import hooks
from deepscope.models.execution import batched, predict_logits, predict_proba

__all__ = ["PoolAnalysis", "PoolContext"]


def _z(v: np.ndarray) -> np.ndarray:
    s = v.std()
    return (v - v.mean()) / (s if s > 0 else 1.0)


def _uf_dhms(hm_labels: np.ndarray, feats: torch.Tensor, y: torch.Tensor, pred: torch.Tensor,
             label: int, num_classes: int, min_subset: int, seed: int
             ) -> dict[str, heatmaps.DHM]:
    """UF(1), and UF(2) when both of its subsets have at least ``min_subset`` inputs."""
    correct = (y == label) & (pred == label)
    dhms = {"uf1": heatmaps.DHM("uf1", heatmaps.uf1(hm_labels, label), 1.0, {})}
    mis_as = (y != label) & (pred == label)
    sizes = {"misclassified_as_L": int(mis_as.sum()), "correct_L": int(correct.sum())}
    if min(sizes.values()) >= min_subset:
        hm = heatmaps.subset_heatmaps(feats, y, num_classes, {"mis": mis_as, "correct": correct},
                                      seed=seed)
        dhms["uf2"] = heatmaps.DHM("uf2", heatmaps.uf2(hm["mis"], hm["correct"]), -1.0, sizes)
    return dhms


def _of_dhms(feats: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, label: int,
             num_classes: int, seed: int) -> dict[str, heatmaps.DHM]:
    """The OF DHM over the labels that ``label`` is misclassified as."""
    correct = (y == label) & (pred == label)
    subsets = {f"L_as_{k}": (y == label) & (pred == k) for k in range(num_classes)
               if k != label}
    subsets = {k: m for k, m in subsets.items() if int(m.sum()) >= 1}
    sizes = {k: int(m.sum()) for k, m in subsets.items()}
    sizes["correct_L"] = int(correct.sum())
    if not subsets or sizes["correct_L"] == 0:
        raise InputError(
            f"label {label} is never (or always) misclassified in the analysis data, so "
            "the over-fitting DHM is undefined; is this really an over-fitting bug?")
    hm = heatmaps.subset_heatmaps(feats, y, num_classes, {**subsets, "correct": correct},
                                  seed=seed)
    mis = [hm[k] for k in subsets if k in hm]
    return {"of": heatmaps.DHM("of", heatmaps.of(mis, hm["correct"]), 1.0, sizes)}


class PoolAnalysis:
    """What strategies may look at, computed lazily and once (model *before* repair).

    Parameters
    ----------
    model : nn.Module
        The buggy model (before repair); never modified.
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
    max_samples : int
        At most this many analysis samples per feature-model fit.
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

    # -- analysis ---------------------------------------------------------------------------
    def _fit_dhms(self) -> None:
        fm = FeatureModels(self.model, layer=self.layer, seed=self.seed,
                           max_samples=self.max_samples, batch_size=self.batch_size
                           ).fit(self.analysis)
        self.features = fm
        self.label_heatmaps = heatmaps.label_heatmaps(fm.weights_)
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(self.analysis), generator=g)[: 2 * self.max_samples]
        x, y = self.analysis.x[order], self.analysis.y[order].cpu()
        feats = extract(self.model, fm.layer_, x, batch_size=self.batch_size,
                        time_axis=fm.time_axis)
        # the subsets follow the *model's* predictions (its bug), not the feature model's
        pred = predict_logits(self.model, x, batch_size=self.batch_size).argmax(1).cpu()
        if self.kind == "underfit":
            self.dhms = _uf_dhms(self.label_heatmaps, feats, y, pred, self.label,
                                 self.num_classes, self.min_subset, self.seed)
        else:
            self.dhms = _of_dhms(feats, y, pred, self.label, self.num_classes, self.seed)

    def _pool_pass(self, with_dhm: bool) -> None:
        start = time.perf_counter()
        if with_dhm and not self.dhms:
            self._fit_dhms()
        model = self.model
        if with_dhm:
            assert self.features is not None
            prefix, suffix = hooks.split(model, self.features.layer_)
            time_axis = self.features.time_axis
            dirs = torch.from_numpy(np.stack([d.sign * d.vector for d in self.dhms.values()])
                                    ).float()

            def run(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                h = prefix(xb)
                probs = torch.softmax(suffix(h).float(), 1)
                v = layer_features(h, xb, time_axis)
                return probs, v.to("cpu", torch.float32) @ dirs.T

            probs, s = batched(model, self.pool.x, run, batch_size=self.batch_size, to="cpu")
            s = s.numpy()
            self._scores = sum(_z(s[:, j]) for j in range(s.shape[1]))
        else:
            probs = batched(model, self.pool.x, lambda xb: torch.softmax(model(xb).float(), 1),
                            batch_size=self.batch_size, to="cpu")
        self._probs = probs.numpy()
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

    def current_probs(self, index: np.ndarray, model: nn.Module | None = None) -> np.ndarray:
        """Probabilities of pool inputs ``index`` under ``model`` (default: the analysed one)."""
        model = self.model if model is None else model
        x = self.pool.x[torch.from_numpy(np.asarray(index, dtype=np.int64))]
        if len(x) == 0:
            return np.zeros((0, self.num_classes))
        return predict_proba(model, x, batch_size=self.batch_size).float().cpu().numpy()

    def matches(self, model: nn.Module, pool: Any, label: int, kind: str) -> bool:
        """Whether this analysis was made for exactly these objects and this bug."""
        return (self.model is model and self.pool is pool and self.label == label
                and self.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """Analysis summary (feature models and DHMs), for reports."""
        out: dict[str, Any] = {"seconds": self.seconds}
        if self.features is not None:
            out["feature_models"] = self.features.to_dict()
            out["dhms"] = {k: d.to_dict() for k, d in self.dhms.items()}
        return out


PoolContext = PoolAnalysis  # the old name
