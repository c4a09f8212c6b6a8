"""Baseline explainers: adapters to the real ``lime`` and ``shap`` packages, random features, and
captum's Integrated Gradients as a white-box reference.

All of them perturb inputs through the same :class:`~deepscope.explain.features.FeatureSpace`
and the same fills as DMM-MEN, so their feature ids and "nullify" mean the same thing.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
from tqdm.auto import tqdm

from deepscope.errors import InputError
from deepscope.explain.base import EXPLAINERS, Explainer
from deepscope.explain.features import FeatureSpace, fill_values, n_features
from deepscope.explain.sampling import render


def _progress(n: int, desc: str, enabled: bool):
    return tqdm(range(n), desc=desc, disable=not enabled, leave=False)


class _FillMixin:
    fill: str
    reference: np.ndarray | None

    def _fill(self, x: np.ndarray) -> np.ndarray:
        ref = self.reference if self.reference is not None else getattr(self, "fit_x_", None)
        return np.ascontiguousarray(fill_values(x, self.fill, reference=ref))


@EXPLAINERS.register("lime")
class Lime(_FillMixin, Explainer):
    """LIME through the ``lime`` package (image explainer, or tabular explainer for rows).

    Parameters
    ----------
    space : FeatureSpace, optional
        Image segmentation handed to ``LimeImageExplainer`` as its ``segmentation_fn`` (default
        2×2 grid cells, which suit 28×28 images better than quickshift). Ignored for rows.
    num_samples : int
        Perturbations per explained sample (LIME's default 1000; 5000 for tabular).
    fill : {"zero", "mean", "blur"}
        LIME's ``hide_color`` (a per-pixel array for ``"mean"`` / ``"blur"``).
    kernel_width : float
        LIME's kernel width (images: 0.25 on cosine distance, LIME's default).
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
        self.space = space
        self.num_samples = num_samples
        self.progress = progress
        self.fill = fill
        self.reference = reference
        self.kernel_width = kernel_width
        self.batch_size = batch_size
        self.seed = seed

    def _fit(self, x: np.ndarray) -> None:
        self.fit_x_ = x

    def _explain(self, x: np.ndarray):
        if x.ndim == 4:
            return self._explain_images(x)
        return self._explain_rows(x)

    def _explain_images(self, x: np.ndarray):
        from lime import lime_image

        segs = self.space_.segments(x)
        fills = self._fill(x)
        width = n_features(self.space_, x)
        out = np.full((len(x), width), np.nan)
        num = self.num_samples or 1000
        bb = self.black_box_

        def classifier(imgs_nhwc: np.ndarray) -> np.ndarray:
            return bb(np.ascontiguousarray(np.moveaxis(imgs_nhwc, -1, 1), dtype=x.dtype))

        for i in _progress(len(x), "LIME", self.progress):
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
            row = np.full(width, np.nan)
            row[:d] = 0.0
            for feat, weight in exp.local_exp[self.target_]:
                if feat < d:
                    row[feat] = weight
            out[i] = row
        return out, None, {"num_samples": num}

    def _explain_rows(self, x: np.ndarray):
        from lime import lime_tabular

        num = self.num_samples or 5000
        train = self.fit_x_ if self.reference is None else np.asarray(self.reference)
        out = np.zeros((len(x), x.shape[1]))
        for i in _progress(len(x), "LIME", self.progress):
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


@EXPLAINERS.register("kernel-shap")
class KernelShap(_FillMixin, Explainer):
    """KernelSHAP through ``shap.KernelExplainer``.

    Images: the explained function maps a coalition over the feature space to the target's
    probability of the input with the "off" features filled (the background is the all-off
    coalition), as in shap's superpixel examples. Rows: ``KernelExplainer`` on the black box
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
        How "off" features are filled (images).
    background : ndarray, optional
        Background rows for tabular data.
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
        self.space = space
        self.nsamples = nsamples
        self.progress = progress
        self.l1_reg = l1_reg
        self.fill = fill
        self.reference = reference
        self.background = background
        self.batch_size = batch_size
        self.seed = seed

    def _fit(self, x: np.ndarray) -> None:
        self.fit_x_ = x

    def _explain(self, x: np.ndarray):
        with warnings.catch_warnings():  # shap's colour module warns on import
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap

        state = np.random.get_state()  # noqa: NPY002 - shap samples with the global RNG
        try:
            if x.ndim == 4:
                out = self._explain_images(x, shap)
            else:
                out = self._explain_rows(x, shap)
        finally:
            np.random.set_state(state)  # noqa: NPY002
        return out, None, {"nsamples": self.nsamples, "l1_reg": self.l1_reg}

    def _explain_images(self, x: np.ndarray, shap) -> np.ndarray:
        segs = self.space_.segments(x)
        fills = self._fill(x)
        width = n_features(self.space_, x)
        out = np.full((len(x), width), np.nan)
        target = self.target_
        for i in _progress(len(x), "KernelSHAP", self.progress):
            d = int(np.asarray(segs[i]).max()) + 1
            space_i = _OneImageSpace(np.asarray(segs[i]), d)

            def f(z, i=i, space_i=space_i):
                imgs = render(space_i, x[i], np.asarray(z) > 0.5, fills[i])
                return self.black_box_(imgs)[:, target]

            np.random.seed((self.seed + i) % 2**32)  # noqa: NPY002
            explainer = shap.KernelExplainer(f, np.zeros((1, d)), link="identity")
            vals = explainer.shap_values(
                np.ones((1, d)), nsamples=self.nsamples, l1_reg=self.l1_reg, silent=True
            )
            out[i, :d] = np.asarray(vals).reshape(-1)[:d]
        return out

    def _explain_rows(self, x: np.ndarray, shap) -> np.ndarray:
        if self.background is not None:
            bg = np.asarray(self.background, dtype=np.float64)
        else:
            bg = self.fit_x_.mean(axis=0, keepdims=True)
        target = self.target_

        def f(rows):
            return self.black_box_(np.asarray(rows, dtype=x.dtype))[:, target]

        out = np.zeros((len(x), x.shape[1]))
        for i in _progress(len(x), "KernelSHAP", self.progress):
            np.random.seed((self.seed + i) % 2**32)  # noqa: NPY002
            explainer = shap.KernelExplainer(f, bg, link="identity")
            vals = explainer.shap_values(
                x[i : i + 1], nsamples=self.nsamples, l1_reg=self.l1_reg, silent=True
            )
            out[i] = np.asarray(vals).reshape(-1)
        return out


class _OneImageSpace(FeatureSpace):
    """A fixed segmentation of one image (used to render one sample's coalitions)."""

    def __init__(self, segments: np.ndarray, d: int) -> None:
        self.segments_ = segments
        self.n_features_ = d
        self.input_shape_ = None  # shape checks are skipped: rows come from a checked input

    def _segmentation(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - prefitted
        return self.segments_

    def segments(self, x) -> np.ndarray:
        return np.broadcast_to(self.segments_, (len(x), *self.segments_.shape))


@EXPLAINERS.register("random")
class RandomExplainer(Explainer):
    """Random features: i.i.d. standard normal attributions (a floor for every fidelity test).

    Parameters
    ----------
    space : FeatureSpace, optional
        Feature space (default 2×2 grid cells for images, columns for rows).
    seed : int
        Same seed, same attributions.
    """

    name = "random"

    def __init__(self, space: FeatureSpace | None = None, *, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    def _explain(self, x: np.ndarray):
        width = n_features(self.space_, x)
        rng = np.random.default_rng(self.seed)
        attr = rng.standard_normal((len(x), width))
        if not self.space_.shared:
            counts = self.space_.segments(x).reshape(len(x), -1).max(axis=1) + 1
            attr[np.arange(width)[None, :] >= counts[:, None]] = np.nan
        return attr, None, {}


@EXPLAINERS.register("integrated-gradients")
class IntegratedGradients(_FillMixin, Explainer):
    """captum's Integrated Gradients (white-box reference; needs the torch model).

    Pixel attributions of the target's logit are summed over channels and over each feature's
    pixels. ``fit`` takes ``predict_proba`` only to check the target (pass the model's own
    probability function, or None to use ``softmax(model(x))``).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits). Its ``training`` flag and ``requires_grad`` flags are
        restored after every call.
    space : FeatureSpace, optional
        Feature space for the summed attributions (default 2×2 grid cells).
    fill : {"zero", "mean", "blur"}
        The IG baseline.
    n_steps : int
        Riemann steps of the path integral (model evaluations per sample).
    """

    name = "integrated-gradients"

    def __init__(
        self,
        model=None,
        space: FeatureSpace | None = None,
        *,
        fill: str = "zero",
        reference: np.ndarray | None = None,
        n_steps: int = 50,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.space = space
        self.fill = fill
        self.reference = reference
        self.n_steps = n_steps
        self.batch_size = batch_size

    def _torch_proba(self, x: np.ndarray) -> np.ndarray:
        import torch

        model = self.model
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.float32
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad():
                logits = model(torch.as_tensor(x, device=device, dtype=dtype))
                return torch.softmax(logits, dim=1).double().cpu().numpy()
        finally:
            model.train(was_training)

    def fit(self, x, predict_proba=None, target: int = 0) -> IntegratedGradients:
        if self.model is None:
            raise InputError(
                "IntegratedGradients needs the torch model: IntegratedGradients(model)"
            )
        proba = predict_proba or self._torch_proba
        return super().fit(x, proba, target=target)  # type: ignore[return-value]

    def _fit(self, x: np.ndarray) -> None:
        self.fit_x_ = x

    def _explain(self, x: np.ndarray):
        import torch
        from captum.attr import IntegratedGradients as CaptumIG

        model = self.model
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.float32
        fills = self._fill(x)
        was_training = model.training
        flags = [p.requires_grad for p in model.parameters()]
        pix = []
        try:
            model.eval()
            ig = CaptumIG(model)
            for i in range(0, len(x), self.batch_size):
                xb = torch.as_tensor(x[i : i + self.batch_size], device=device, dtype=dtype)
                fb = torch.as_tensor(fills[i : i + self.batch_size], device=device, dtype=dtype)
                att = ig.attribute(xb, baselines=fb, target=self.target_, n_steps=self.n_steps)
                pix.append(att.detach().double().cpu().numpy())
        finally:
            model.train(was_training)
            for p, flag in zip(model.parameters(), flags, strict=True):
                p.requires_grad_(flag)
        pix_attr = np.concatenate(pix)
        pix_sum = pix_attr.sum(axis=1).reshape(len(x), -1) if x.ndim == 4 else pix_attr
        segs = self.space_.segments(x).reshape(len(x), -1)
        width = n_features(self.space_, x)
        out = np.zeros((len(x), width))
        for i in range(len(x)):
            keep = segs[i] >= 0
            out[i] = np.bincount(segs[i][keep], weights=pix_sum[i][keep], minlength=width)
        return out, None, {"n_steps": self.n_steps, "model_evaluations": self.n_steps * len(x)}
