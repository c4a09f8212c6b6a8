"""KernelSHAP through the real ``shap`` package.

Perturbs inputs through the same :class:`~deepscope.explain.features.FeatureSpace` and fills as
DMM-MEN, so feature ids and "nullify" mean the same thing for every explainer.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from deepscope.explain.base import EXPLAINERS, Explainer, FillMixin, progress_range
from deepscope.explain.features import FeatureSpace, n_features
from deepscope.explain.sampling import render


@EXPLAINERS.register("kernel-shap")
class KernelShap(FillMixin, Explainer):
    """KernelSHAP through ``shap.KernelExplainer`` (black box: ``predict_proba`` goes to ``fit``).

    Images and sequences: the explained function maps a coalition over the feature space to
    the target's probability of the input with the "off" features filled (the background is
    the all-off coalition), as in shap's superpixel and text-masking examples; with a
    :class:`~deepscope.explain.features.SequenceSpace` the features are positions and "off"
    writes the fill id (int64 throughout). Rows: ``KernelExplainer`` on the black box
    with a background of the fitting rows' mean (or ``background`` rows).

    Parameters
    ----------
    space : FeatureSpace, optional
        Feature space (default 2×2 grid cells for images, columns for rows).
    nsamples : int or "auto"
        Coalitions per explained sample; shap's default ``"auto"`` is ``2 F + 2048``.
    l1_reg : str, float or bool
        Passed to ``shap_values``. shap 0.51's default ``"num_features(10)"`` keeps only ten
        non-zero attributions, too few for top-40 rankings, so the default here is ``False``
        (all features, plain weighted least squares).
    fill : {"zero", "mean", "blur"}
        How "off" features are filled (images; sequences: ``"zero"`` = the space's fill id).
    reference : ndarray, optional
        Inputs whose mean is the ``"mean"`` fill (default: the fitting inputs).
    background : ndarray, optional
        Background rows for tabular data.
    batch_size : int
        Inputs per black-box call.
    seed : int
        shap samples with numpy's global RNG; it is seeded with ``seed + i`` for sample ``i``
        and restored afterwards.
    progress : bool
        Show a progress bar over the explained samples.
    """

    name = "kernel-shap"

    def __init__(
        self,
        space: FeatureSpace | None = None,
        *,
        nsamples: int | str = "auto",
        l1_reg: str | float | bool = False,
        fill: str = "zero",
        reference: np.ndarray | None = None,
        background: np.ndarray | None = None,
        batch_size: int = 512,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self._store(locals())

    def _explain(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        with warnings.catch_warnings():  # shap's colour module warns on import
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap

        state = np.random.get_state()  # noqa: NPY002 - shap samples with the global RNG
        try:
            if x.ndim == 4 or self.space_.integer:
                out = self._explain_coalitions(x, shap)
            else:
                out = self._explain_rows(x, shap)
        finally:
            np.random.set_state(state)  # noqa: NPY002
        return out, None, {"nsamples": self.nsamples, "l1_reg": self.l1_reg}

    def _shap_values(self, shap: Any, f: Any, background: np.ndarray, row: np.ndarray,
                     i: int) -> np.ndarray:
        """One sample's SHAP values, shap's global RNG seeded with ``seed + i``."""
        np.random.seed((self.seed + i) % 2**32)  # noqa: NPY002
        explainer = shap.KernelExplainer(f, background, link="identity")
        vals = explainer.shap_values(row, nsamples=self.nsamples, l1_reg=self.l1_reg,
                                     silent=True)
        return np.asarray(vals).reshape(-1)

    def _explain_coalitions(self, x: np.ndarray, shap: Any) -> np.ndarray:
        """Images and sequences: ``KernelExplainer`` over coalitions of the feature space."""
        segs = self.space_.segments(x)
        fills = self._fill(x)
        width = n_features(self.space_, x)
        out = np.full((len(x), width), np.nan)
        target = self.target_
        for i in progress_range(len(x), "KernelSHAP", self.progress):
            d = int(np.asarray(segs[i]).max()) + 1
            space_i = _OneImageSpace(np.asarray(segs[i]), d)

            def f(z: np.ndarray, i: int = i, space_i: FeatureSpace = space_i) -> np.ndarray:
                imgs = render(space_i, x[i], np.asarray(z) > 0.5, fills[i])
                return self.black_box_(imgs)[:, target]

            out[i, :d] = self._shap_values(shap, f, np.zeros((1, d)), np.ones((1, d)), i)[:d]
        return out

    def _explain_rows(self, x: np.ndarray, shap: Any) -> np.ndarray:
        if self.background is not None:
            bg = np.asarray(self.background, dtype=np.float64)
        else:
            bg = self.fit_x_.mean(axis=0, keepdims=True)
        target = self.target_

        def f(rows: np.ndarray) -> np.ndarray:
            return self.black_box_(np.asarray(rows, dtype=x.dtype))[:, target]

        out = np.zeros((len(x), x.shape[1]))
        for i in progress_range(len(x), "KernelSHAP", self.progress):
            out[i] = self._shap_values(shap, f, bg, x[i : i + 1], i)
        return out


class _OneImageSpace(FeatureSpace):
    """A fixed segmentation of one image (used to render one sample's coalitions)."""

    def __init__(self, segments: np.ndarray, d: int) -> None:
        self.segments_ = segments
        self.n_features_ = d
        self.input_shape_ = None  # shape checks are skipped: rows come from a checked input

    def _segmentation(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - prefitted
        return self.segments_

    def segments(self, x: Any) -> np.ndarray:
        return np.broadcast_to(self.segments_, (len(x), *self.segments_.shape))
