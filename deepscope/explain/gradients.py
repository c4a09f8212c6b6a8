"""captum's Integrated Gradients: the white-box reference of the explanation benchmark.

Token / byte ids (int64, :class:`~deepscope.explain.features.SequenceSpace`) cannot be
differentiated; there the path integral runs in *embedding* space: the output of the model's
``torch.nn.Embedding`` (read and replaced through :mod:`deepscope.models.hooks`) moves from the
embedding of the fill ids to the input's embedding, and each position's attribution is
``(e - e_fill) · mean gradient`` summed over the embedding dimension. With ``n_steps=1`` this
is gradient × embedding at the input when the fill id embeds to zero (padding id 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deepscope.errors import InputError
from deepscope.explain.base import EXPLAINERS, Explainer, FillMixin, check_class_outputs
from deepscope.explain.features import FeatureSpace, n_features
from deepscope.models import execution, hooks


@EXPLAINERS.register("integrated-gradients")
class IntegratedGradients(FillMixin, Explainer):
    """captum's Integrated Gradients (a *white-box* explainer: it needs the torch model).

    Unlike the black-box explainers, which receive ``predict_proba`` in ``fit``, the model is
    given to the constructor (see :mod:`deepscope.protocol`): IG differentiates it. Pixel
    attributions of the target's logit are summed over channels and over each feature's
    pixels. ``fit`` takes ``predict_proba`` only to check the target (pass the model's own
    probability function, or None to use ``softmax(model(x))``).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits). It runs through
        :func:`deepscope.models.execution.batched` (eval mode, parameters frozen, input
        gradients on); every module's ``training`` and every parameter's ``requires_grad`` are
        restored after every call, also when it raises.
    space : FeatureSpace, optional
        Feature space for the summed attributions (default 2×2 grid cells).
    fill : {"zero", "mean", "blur"}
        The IG baseline.
    reference : ndarray, optional
        Inputs whose mean is the ``"mean"`` baseline (default: the fitting inputs).
    n_steps : int
        Riemann steps of the path integral (model evaluations per sample).
    batch_size : int
        Samples per captum call (and per call of the default ``predict_proba``).
    layer : str, optional
        Sequences only: dotted name of the ``torch.nn.Embedding`` to integrate over (default:
        the model's first one).
    """

    name = "integrated-gradients"

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        space: FeatureSpace | None = None,
        *,
        fill: str = "zero",
        reference: np.ndarray | None = None,
        n_steps: int = 50,
        batch_size: int = 64,
        layer: str | None = None,
    ) -> None:
        self._store(locals())

    def _torch_proba(self, x: np.ndarray) -> np.ndarray:
        """``softmax(model(x))`` as float64 numpy (softmax in the model's dtype)."""
        ids = np.asarray(x).dtype.kind in "iu"
        dtype = torch.int64 if ids else execution.model_dtype(self.model)
        xt = torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)
        out = execution.batched(self.model, xt, lambda xb: torch.softmax(self.model(xb), dim=1),
                                batch_size=self.batch_size)
        assert isinstance(out, torch.Tensor)
        return out.double().numpy()

    def fit(self, x: Any, predict_proba: Callable[[np.ndarray], np.ndarray] | None = None,
            target: int = 0) -> IntegratedGradients:
        """Check ``target`` (with ``predict_proba``, default the model's softmax); returns self."""
        if self.model is None:
            raise InputError(
                "IntegratedGradients needs the torch model: IntegratedGradients(model)"
            )
        proba = predict_proba or self._torch_proba
        return super().fit(x, proba, target=target)  # type: ignore[return-value]

    def _pixel_attributions(self, x: np.ndarray) -> np.ndarray:
        """captum's IG of the target logit per input position, float64 ``N×C×H×W`` / ``N×D``."""
        from captum.attr import IntegratedGradients as CaptumIG

        ig = CaptumIG(self.model)
        dtype = execution.model_dtype(self.model)
        pairs = torch.stack([torch.as_tensor(x, dtype=dtype),
                             torch.as_tensor(self._fill(x), dtype=dtype)], dim=1)

        def attribute(batch: torch.Tensor) -> torch.Tensor:
            att = ig.attribute(batch[:, 0], baselines=batch[:, 1], target=self.target_,
                               n_steps=self.n_steps)
            return att.detach()

        out = execution.batched(self.model, pairs, attribute, batch_size=self.batch_size,
                                grad=True, freeze=True)
        assert isinstance(out, torch.Tensor)
        return out.double().numpy()

    def _embedding_layer(self) -> str:
        """The embedding to integrate over: ``layer`` or the model's first ``nn.Embedding``."""
        if self.layer is not None:
            if not isinstance(hooks.resolve(self.model, self.layer), torch.nn.Embedding):
                raise InputError(f"layer {self.layer!r} is not a torch.nn.Embedding; pass the "
                                 "embedding of the token / byte ids")
            return self.layer
        for name, module in self.model.named_modules():
            if isinstance(module, torch.nn.Embedding):
                return name
        raise InputError("IntegratedGradients on token / byte ids needs a model with a "
                         "torch.nn.Embedding (or pass layer=...)")

    def _position_attributions(self, x: np.ndarray) -> np.ndarray:
        """IG over the embedding per position, float64 ``N×T`` (see the module docstring)."""
        layer, target, steps = self._embedding_layer(), self.target_, self.n_steps
        pairs = torch.stack([torch.as_tensor(x, dtype=torch.int64),
                             torch.as_tensor(self._fill(x), dtype=torch.int64)], dim=1)

        def embed(ids: torch.Tensor) -> torch.Tensor:
            with hooks.capture(self.model, layer) as out:
                self.model(ids)
            return out[layer]

        def attribute(batch: torch.Tensor) -> torch.Tensor:
            ids = batch[:, 0]
            emb, base = embed(ids), embed(batch[:, 1])
            total = torch.zeros_like(emb)
            for alpha in (torch.arange(steps, dtype=emb.dtype) + 0.5) / steps:
                point = (base + alpha * (emb - base)).requires_grad_(True)
                with hooks.intervene(self.model, layer, lambda _out, p=point: p):
                    score = check_class_outputs(self.model(ids))[:, target].sum()
                total += torch.autograd.grad(score, point)[0]
            return ((emb - base) * total / steps).sum(dim=-1).detach()

        out = execution.batched(self.model, pairs, attribute, batch_size=self.batch_size,
                                grad=True, freeze=True)
        assert isinstance(out, torch.Tensor)
        return out.double().numpy()

    def _explain(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        if self.space_.integer:
            pix_attr = self._position_attributions(x)
        else:
            pix_attr = self._pixel_attributions(x)
        pix_sum = pix_attr.sum(axis=1).reshape(len(x), -1) if x.ndim == 4 else pix_attr
        segs = self.space_.segments(x).reshape(len(x), -1)
        width = n_features(self.space_, x)
        out = np.zeros((len(x), width))
        for i in range(len(x)):
            keep = segs[i] >= 0
            out[i] = np.bincount(segs[i][keep], weights=pix_sum[i][keep], minlength=width)
        return out, None, {"n_steps": self.n_steps, "model_evaluations": self.n_steps * len(x)}
