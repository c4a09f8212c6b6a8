"""Fitting a registered detector on a labelled image dataset: the one path ``deepscope detect
fit`` and the AmI benchmark (``bench/ami_table.py``) share, so both use the same defaults.

The detector is built with :func:`deepscope.detect.get` from the common options (target
false-positive rate, seed, progress, the dataset's attribute names) where it takes them, plus
explicit ``params``; it is fitted on the inputs the model classifies correctly, taken in a
seeded random order (at most ``limit``), with their attribute boxes and groups (people) when
the detector needs boxes.

Example
-------
>>> from deepscope.audit.detector_fit import fit_detector
>>> det, used = fit_detector("ami", model, train, target_fpr=0.08)      # doctest: +SKIP
>>> det.detect(x_adv)                                                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepscope import detect
from deepscope.errors import InputError
from deepscope.models import predict_logits

__all__ = ["benign_indices", "build_detector", "fit_detector"]

#: Fewest correctly classified inputs a detector is fitted or calibrated on.
MIN_BENIGN = 4


def build_detector(method: str, model: nn.Module, *, target_fpr: float = 0.05, seed: int = 0,
                   progress: bool = True, attribute_names: Any = None,
                   params: dict[str, Any] | None = None) -> detect.Detector:
    """The registered detector ``method`` with the common options it takes and ``params``.

    The common options (target FP, seed, progress, attribute names) go in only where the
    detector takes them; ``params`` always do (unknown ones are an error) and win.
    """
    if method not in detect.names():
        raise InputError(f"--method must be one of {', '.join(detect.names())}; got {method!r}")
    known = detect.param_names(method)
    common: dict[str, Any] = {"target_fpr": target_fpr, "seed": seed, "progress": progress}
    if attribute_names:
        common["attribute_names"] = tuple(attribute_names)
    merged = {**{k: v for k, v in common.items() if k in known}, **(params or {})}
    return detect.get(method, model, **merged)


def benign_indices(model: nn.Module, data: Any, *, limit: int | None = None, seed: int = 0
                   ) -> torch.Tensor:
    """Indices of ``data``'s inputs the model classifies correctly, in a seeded random order.

    The order is a ``seed``-ed permutation of all inputs, cut to ``limit`` before the
    correctly classified ones are kept.
    """
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    idx = order if limit is None else order[:limit]
    pred = predict_logits(model, data.x[idx]).argmax(1)
    keep = idx[pred == data.y[idx]]
    if len(keep) < MIN_BENIGN:
        where = f"{getattr(data, 'name', 'the data')}/{getattr(data, 'split', '')}".rstrip("/")
        raise InputError(f"only {len(keep)} correctly classified inputs in {where}; a detector "
                         "needs benign inputs the model gets right")
    return keep


def fit_detector(method: str, model: nn.Module, data: Any, *, target_fpr: float = 0.05,
                 seed: int = 0, progress: bool = True, limit: int | None = None,
                 params: dict[str, Any] | None = None, x_calib: torch.Tensor | None = None,
                 witnesses: Any = None) -> tuple[detect.Detector, torch.Tensor]:
    """Build and fit detector ``method`` on the correctly classified inputs of ``data``.

    Parameters
    ----------
    method : str
        A registered detector (``deepscope.detect.names()``).
    model : torch.nn.Module
        The classifier.
    data : Dataset
        Labelled benign inputs; detectors that take boxes read ``extras["boxes"]`` (and
        ``extras["subject"]`` as groups) and ``info["box_names"]``.
    target_fpr, seed, progress, params
        See :func:`build_detector`.
    limit : int, optional
        Use at most this many inputs (before dropping the misclassified ones).
    x_calib : torch.Tensor, optional
        Benign calibration inputs (already correctly classified); default: the detector's own
        held-out share of the fitting inputs.
    witnesses : WitnessSet, optional
        AmI only: witnesses extracted beforehand (skips the extraction).

    Returns
    -------
    (Detector, torch.Tensor)
        The fitted detector and the indices of the inputs it was fitted on.
    """
    takes_boxes = detect.detector_class(method).takes_boxes if method in detect.names() else False
    if takes_boxes and "boxes" not in data.extras:
        raise InputError(f"method {method!r} needs attribute boxes; dataset "
                         f"{getattr(data, 'name', '')!r} has none (use att-faces with its "
                         "landmarks file, or --method squeeze)")
    names = data.info.get("box_names") if takes_boxes else None
    det = build_detector(method, model, target_fpr=target_fpr, seed=seed, progress=progress,
                         attribute_names=names, params=params)
    keep = benign_indices(model, data, limit=limit, seed=seed)
    kwargs: dict[str, Any] = {}
    if x_calib is not None:
        kwargs["x_calib"] = x_calib
    if witnesses is not None:
        kwargs["witnesses"] = witnesses
    if takes_boxes:
        groups = data.extras.get("subject", None)
        kwargs["groups"] = None if groups is None else groups[keep]
        det.fit(data.x[keep], data.extras["boxes"][keep], **kwargs)
    else:
        det.fit(data.x[keep], **kwargs)
    return det, keep
