"""The seed's attribute-detection check: does an attribute's presence show in its witnesses?

Construction (documented choice): for every image and attribute we make one *intact* example
(the image) and one *removed* example (the attribute's region replaced by a heavily blurred
copy of the image, feathered at the border — the attribute's shape is gone, the local
brightness stays). A logistic-regression probe per attribute predicts intact vs removed from

- the **witness** features: the activations of that attribute's witness neurons at every
  witness layer, averaged over the attribute's region in the feature map;
- the **descriptor** features: the model's penultimate layer (the input of the last linear
  layer), like the seed's "face descriptor".

Probes are trained on one set of images and tested on another (e.g. train / test faces);
the result holds the test accuracy of both feature sets per attribute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepscope._jsonable import to_jsonable
from deepscope.detect.ami.attributes import AttributeSet
from deepscope.detect.ami.witnesses import WitnessSet, _region_map
from deepscope.errors import InputError
from deepscope.models import hooks
from deepscope.models.execution import batch_slices, inference, model_device

__all__ = ["AttributeProbeResult", "attribute_probe", "descriptor_layer", "remove_attribute"]


@dataclass(frozen=True)
class AttributeProbeResult:
    """Test accuracy of the presence probes per attribute."""

    attributes: tuple[str, ...]
    witness_accuracy: tuple[float, ...]
    descriptor_accuracy: tuple[float, ...]
    witness_dims: tuple[int, ...]
    descriptor_layer: str
    descriptor_dims: int
    n_train: int
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (every field)."""
        return to_jsonable(asdict(self))


def descriptor_layer(model: nn.Module) -> str:
    """Name of the leaf module right before the model's last ``nn.Linear``."""
    leaves = [name for name, m in model.named_modules() if name and not list(m.children())]
    linear = [i for i, name in enumerate(leaves)
              if isinstance(model.get_submodule(name), nn.Linear)]
    if not linear or linear[-1] == 0:
        raise InputError("cannot find the penultimate layer (no leaf before the last "
                         "nn.Linear); pass descriptor=")
    return leaves[linear[-1] - 1]


def remove_attribute(x: torch.Tensor, attrs: AttributeSet, attribute: int, *,
                     feather: float = 2.0, blur: int = 15) -> torch.Tensor:
    """Images with ``attribute`` replaced by a ``blur``×``blur`` box-blurred copy."""
    idx = torch.arange(x.shape[0])
    mask = attrs.region(idx, attribute, tuple(x.shape[2:]), feather=feather, dtype=x.dtype,
                        device=x.device)
    blurred = F.avg_pool2d(x, blur, stride=1, padding=blur // 2, count_include_pad=False)
    return mask * blurred + (1 - mask) * x


def _features(model: nn.Module, x: torch.Tensor, attrs: AttributeSet, attribute: int,
              witnesses: WitnessSet, descriptor: str, batch_size: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    name = witnesses.attributes[attribute]
    layers = [layer for layer in witnesses.layers if witnesses.channels[layer][name]]
    wit, desc = [], []
    device = model_device(model)
    for sl in batch_slices(x.shape[0], batch_size):
        xb = x[sl].to(device)
        idx = torch.arange(sl.start, sl.stop)
        mask = attrs.region(idx, attribute, tuple(x.shape[2:]), dtype=xb.dtype, device=device)
        with inference(model), hooks.capture(model, [*layers, descriptor]) as acts:
            model(xb)
        parts = []
        for layer in layers:
            a = acts[layer][:, list(witnesses.channels[layer][name])].float()
            if a.ndim == 4:
                region = _region_map(mask, tuple(a.shape[2:]), 1)
                a = (a * region).flatten(2).sum(2) / region.flatten(2).sum(2)
            parts.append(a)
        wit.append(torch.cat(parts, 1) if parts else torch.zeros(xb.shape[0], 0))
        desc.append(acts[descriptor].flatten(1).float())
    return torch.cat(wit).cpu(), torch.cat(desc).cpu()


def _presence_set(model: nn.Module, x: torch.Tensor, attrs: AttributeSet, attribute: int,
                  witnesses: WitnessSet, descriptor: str, *, feather: float, blur: int,
                  batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Witness and descriptor features of intact and attribute-removed images, and labels."""
    removed = remove_attribute(x, attrs, attribute, feather=feather, blur=blur)
    both = torch.cat([x, removed])
    both_attrs = AttributeSet(
        boxes=None if attrs.boxes is None else torch.cat([attrs.boxes] * 2),
        masks=None if attrs.masks is None else torch.cat([attrs.masks] * 2),
        names=attrs.names)
    wf, df = _features(model, both, both_attrs, attribute, witnesses, descriptor, batch_size)
    y = torch.cat([torch.ones(x.shape[0]), torch.zeros(x.shape[0])])
    return wf, df, y


def _logistic(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
              l2: float = 1e-2) -> float:
    if xtr.shape[1] == 0:
        return float("nan")
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    w = torch.zeros(xtr.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    xtr, xte = xtr.double(), xte.double()
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(xtr @ w + b, ytr.double()) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    pred = (xte @ w + b).detach() > 0
    return float((pred == yte.bool()).float().mean())


def attribute_probe(model: nn.Module, witnesses: WitnessSet, x_train: torch.Tensor,
                    attrs_train: Any, x_test: torch.Tensor, attrs_test: Any, *,
                    descriptor: str | None = None, feather: float = 2.0, blur: int = 15,
                    batch_size: int = 64) -> AttributeProbeResult:
    """Probe every attribute's presence from its witnesses vs from the penultimate layer.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier.
    witnesses : WitnessSet
        Witnesses extracted on the same model (attributes in the same order as the sets).
    x_train, attrs_train, x_test, attrs_test
        Images and their attribute boxes (N×A×4), masks or :class:`AttributeSet`.
    descriptor : str, optional
        Layer used as the face descriptor (default: :func:`descriptor_layer`).
    feather, blur : float, int
        How the attribute is removed (:func:`remove_attribute`).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    AttributeProbeResult
    """
    a_tr = (attrs_train if isinstance(attrs_train, AttributeSet)
            else AttributeSet.coerce(attrs_train, names=witnesses.attributes)).check(x_train)
    a_te = (attrs_test if isinstance(attrs_test, AttributeSet)
            else AttributeSet.coerce(attrs_test, names=witnesses.attributes)).check(x_test)
    if a_tr.num_attributes != len(witnesses.attributes):
        raise InputError(f"{a_tr.num_attributes} attributes given, witnesses have "
                         f"{len(witnesses.attributes)}")
    descriptor = descriptor or descriptor_layer(model)
    hooks.resolve(model, descriptor)
    w_acc, d_acc, dims = [], [], []
    n_desc = 0
    for a in range(a_tr.num_attributes):
        (wtr, dtr, ytr), (wte, dte, yte) = (
            _presence_set(model, x, attrs, a, witnesses, descriptor, feather=feather, blur=blur,
                          batch_size=batch_size)
            for x, attrs in ((x_train, a_tr), (x_test, a_te)))
        w_acc.append(_logistic(wtr, ytr, wte, yte))
        d_acc.append(_logistic(dtr, ytr, dte, yte))
        dims.append(int(wtr.shape[1]))
        n_desc = int(dtr.shape[1])
    return AttributeProbeResult(tuple(witnesses.attributes), tuple(w_acc), tuple(d_acc),
                                tuple(dims), descriptor, n_desc, 2 * x_train.shape[0],
                                2 * x_test.shape[0])
