"""``detect.get(name, model, **params)`` and ``detect.names()``: detectors by registered name.

Example
-------
>>> from deepscope import detect
>>> detect.names()
['ami', 'art-binary', 'joint', 'lid', 'mahalanobis', 'margin', 'squeeze']
>>> det = detect.get("squeeze", model, target_fpr=0.05, bit_depth=4)   # doctest: +SKIP
>>> both = detect.get("joint", model, target_fpr=0.05, n_pairs=50)      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from torch import nn

from deepscope.detect.base import DETECTORS, Detector
from deepscope.errors import InputError, RegistryError

__all__ = ["detector_class", "get", "names", "param_names"]


def names() -> list[str]:
    """Registered detector names, in registration order."""
    return DETECTORS.names()


def detector_class(name: str) -> type[Detector]:
    """The class registered as ``name`` (``RegistryError`` listing the choices otherwise)."""
    if not isinstance(name, str):
        raise RegistryError(f"detector name must be a string, got {name!r}")
    return DETECTORS.get(name)


def param_names(name: str) -> list[str]:
    """The parameters :func:`get` accepts for detector ``name``."""
    return detector_class(name).factory_params()


def get(name: str, model: nn.Module, **params: Any) -> Detector:
    """Build the (unfitted) detector registered as ``name`` on ``model`` with ``params``.

    ``"joint"`` builds the union of ``members`` (default AmI and feature squeezing) and routes
    every other parameter to the members that take it (:meth:`JointDetector.create`).

    Raises
    ------
    RegistryError
        ``name`` is not a registered detector.
    InputError
        A parameter is unknown (the message lists the valid ones) or invalid.
    """
    cls = detector_class(name)
    known = cls.factory_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(
            f"unknown parameter(s) {unknown} for detector {name!r}; valid: {', '.join(known)}"
        )
    return cls.create(model, **params)
