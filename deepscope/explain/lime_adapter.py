"""LIME through the real ``lime`` package (image explainer, tabular explainer for rows, and
``LimeBase`` for token / byte sequences).

Perturbs inputs through the same :class:`~deepscope.explain.features.FeatureSpace` and fills as
DMM-MEN, so feature ids and "nullify" mean the same thing for every explainer. Sequences
(:class:`~deepscope.explain.features.SequenceSpace`): the neighbourhood is drawn as
``LimeTextExplainer`` draws it with ``bow=False`` (the original plus ``num_samples - 1`` copies,
each with a uniform number ``1..F`` of random positions set to the fill id; cosine distance of
the binary masks × 100; kernel width 25) and fitted by ``lime.lime_base.LimeBase``, so features
stay positions (also inside a window of a longer sequence).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from deepscope.explain.base import EXPLAINERS, Explainer, FillMixin, progress_range
from deepscope.explain.features import FeatureSpace, n_features
from deepscope.explain.sampling import render

#: ``LimeTextExplainer``'s default kernel width (on cosine distance × 100).
TEXT_KERNEL_WIDTH = 25.0


@EXPLAINERS.register("lime")
class Lime(FillMixin, Explainer):
    """LIME through the ``lime`` package (black box: ``predict_proba`` is given to ``fit``).

    Parameters
    ----------
    space : FeatureSpace, optional
        Image segmentation handed to ``LimeImageExplainer`` as its ``segmentation_fn`` (default
        2×2 grid cells, which suit 28×28 images better than quickshift). Ignored for rows.
    num_samples : int
        Perturbations per explained sample, the original included (LIME's defaults: 1000 for
        images; 5000 for tabular rows and sequences).
    fill : {"zero", "mean", "blur"}
        LIME's ``hide_color`` (a per-pixel array for ``"mean"`` / ``"blur"``).
    reference : ndarray, optional
        Inputs whose mean is the ``"mean"`` fill (images) or LIME's training rows (tabular);
        default: the fitting inputs.
    kernel_width : float
        LIME's kernel width (images: 0.25 on cosine distance, sequences: 25 on cosine
        distance × 100; LIME's defaults).
    batch_size : int
        Inputs per black-box call.
    seed : int
        Seed of LIME's sampling (sample ``i`` uses ``seed + i``).
    progress : bool
        Show a progress bar over the explained samples.
    """

    name = "lime"

    def __init__(
        self,
        space: FeatureSpace | None = None,
        *,
        num_samples: int | None = None,
        fill: str = "zero",
        reference: np.ndarray | None = None,
        kernel_width: float | None = None,
        batch_size: int = 512,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self._store(locals())

    def _explain(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        if self.space_.integer:
            return self._explain_sequences(x)
        if x.ndim == 4:
            return self._explain_images(x)
        return self._explain_rows(x)

    def _explain_sequences(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        from lime import lime_base
        from sklearn.metrics import pairwise_distances

        width = self.kernel_width or TEXT_KERNEL_WIDTH
        num = self.num_samples or 5000
        d = self.space_.n_features_
        fills = self._fill(x)
        out = np.zeros((len(x), d))

        def kernel(dist: np.ndarray) -> np.ndarray:  # LimeTextExplainer's default kernel
            return np.sqrt(np.exp(-(dist**2) / width**2))

        for i in progress_range(len(x), "LIME", self.progress):
            rng = np.random.default_rng(self.seed + i)
            masks = np.ones((num, d))
            for row, size in enumerate(rng.integers(1, d + 1, num - 1), start=1):
                masks[row, rng.choice(d, size, replace=False)] = 0.0
            labels = self.black_box_(render(self.space_, x[i], masks > 0.5, fills[i]))
            dist = pairwise_distances(masks, masks[:1], metric="cosine").ravel() * 100
            base = lime_base.LimeBase(kernel, random_state=self.seed + i)
            _, weights, _, _ = base.explain_instance_with_data(
                masks, labels, dist, self.target_, num_features=d, feature_selection="none"
            )
            for feat, weight in weights:
                out[i, feat] = weight
        return out, None, {"num_samples": num, "kernel_width": width}

    def _explain_images(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        from lime import lime_image

        segs = self.space_.segments(x)
        fills = self._fill(x)
        width = n_features(self.space_, x)
        out = np.full((len(x), width), np.nan)
        num = self.num_samples or 1000
        bb = self.black_box_

        def classifier(imgs_nhwc: np.ndarray) -> np.ndarray:
            return bb(np.ascontiguousarray(np.moveaxis(imgs_nhwc, -1, 1), dtype=x.dtype))

        for i in progress_range(len(x), "LIME", self.progress):
            seg = np.asarray(segs[i])
            d = int(seg.max()) + 1
            lime_seg = np.where(seg < 0, d, seg)  # LIME needs every pixel in some segment
            explainer = lime_image.LimeImageExplainer(
                kernel_width=self.kernel_width or 0.25,
                feature_selection="none",
                random_state=self.seed + i,
            )
            with contextlib.redirect_stderr(io.StringIO()):  # lime 0.2 always shows tqdm
                exp = explainer.explain_instance(
                    np.moveaxis(x[i], 0, -1),
                    classifier,
                    labels=(self.target_,),
                    hide_color=np.moveaxis(fills[i], 0, -1),
                    top_labels=None,
                    num_features=int(lime_seg.max()) + 1,
                    num_samples=num,
                    batch_size=min(self.batch_size, num),
                    segmentation_fn=lambda _img, s=lime_seg: s,
                    random_seed=self.seed + i,
                )
            out[i, :d] = 0.0
            for feat, weight in exp.local_exp[self.target_]:
                if feat < d:
                    out[i, feat] = weight
        return out, None, {"num_samples": num}

    def _explain_rows(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        from lime import lime_tabular

        num = self.num_samples or 5000
        train = self.fit_x_ if self.reference is None else np.asarray(self.reference)
        out = np.zeros((len(x), x.shape[1]))
        for i in progress_range(len(x), "LIME", self.progress):
            explainer = lime_tabular.LimeTabularExplainer(
                train,
                mode="classification",
                kernel_width=self.kernel_width,
                random_state=self.seed + i,
            )
            exp = explainer.explain_instance(
                x[i], self.black_box_, labels=(self.target_,), num_features=x.shape[1],
                num_samples=num,
            )
            for feat, weight in exp.local_exp[self.target_]:
                out[i, feat] = weight
        return out, None, {"num_samples": num}
