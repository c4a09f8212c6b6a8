"""The object protocol every fitted thing and every result in deepscope follows.

* **Where the model goes.** An object that needs the *inside* of a torch model (its gradients,
  activations or weights: attacks, detectors, feature models, white-box explainers) receives the
  ``nn.Module`` as the first constructor argument, ``model``. An object that only *queries* a
  function (the black-box explainers) receives that callable in ``fit``, the way scikit-learn
  receives ``y``: the function's answers are what it learns from.
* ``__init__`` stores parameters only, under their own names (validated there); ``fit(...)``
  learns, sets attributes ending in ``_`` and returns ``self``; using an unfitted object raises
  :class:`~deepscope.errors.NotFittedError`.
* :meth:`Params.get_params` introspects the constructor (scikit-learn style, the model
  excluded); factories (``attacks.get``, ``detect.get``, ``explain.get``) reject unknown keys
  through :meth:`Params.check_params`.
* :meth:`Persistent.save` / :meth:`Persistent.load`: one ``.npz`` with a JSON header
  (:mod:`deepscope._persist`), atomic, never pickled, ``overwrite=False`` by default. Objects
  bound to a model do not store it: ``load(path, model)`` takes it back.

Example
-------
>>> class Scaler(Params, Persistent):
...     _format = "scaler"
...     def __init__(self, *, factor=2.0):
...         self.factor = factor
>>> Scaler(factor=3.0).get_params()
{'factor': 3.0}
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from deepscope._persist import read_npz, write_npz
from deepscope._typing import PathType
from deepscope.errors import InputError, NotFittedError

__all__ = ["Params", "Persistent", "check_fitted"]

P = TypeVar("P", bound="Persistent")

_SKIP_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class Params:
    """``get_params()`` by constructor introspection; the model argument(s) are not parameters."""

    #: Constructor arguments that name what the object works on, not how (never parameters).
    _subject_args: ClassVar[tuple[str, ...]] = ("model",)

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor's parameters, in signature order."""
        sig = inspect.signature(cls.__init__)
        return [name for name, p in sig.parameters.items()
                if name != "self" and name not in cls._subject_args and p.kind not in _SKIP_KINDS]

    def get_params(self) -> dict[str, Any]:
        """The parameters as given to (and stored by) the constructor."""
        return {name: getattr(self, name) for name in self.param_names()}

    @classmethod
    def check_params(cls, params: Mapping[str, Any], *, what: str | None = None) -> None:
        """Raise :class:`InputError` naming any key of ``params`` the constructor does not take."""
        known = cls.param_names()
        unknown = sorted(set(params) - set(known))
        if unknown:
            label = what or cls.__name__
            raise InputError(
                f"unknown parameter(s) {unknown} for {label}; valid: {', '.join(known)}"
            )

    def __repr__(self) -> str:
        parts = []
        for k, v in self.get_params().items():
            big = isinstance(v, torch.Tensor | np.ndarray)
            shown = f"tensor{tuple(v.shape)}" if big else repr(v)
            parts.append(f"{k}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


def check_fitted(obj: Any, *attributes: str, hint: str = "call .fit(...) first") -> None:
    """Raise :class:`NotFittedError` unless ``obj`` has every learned attribute named."""
    missing = [a for a in attributes if not hasattr(obj, a)]
    if missing:
        raise NotFittedError(f"this {type(obj).__name__} is not fitted yet: {hint}")


class Persistent:
    """``save(path, overwrite=False)`` / ``load(path, ...)`` through one ``.npz`` format.

    Subclasses set :attr:`_format` and implement :meth:`_get_state` and :meth:`_from_state`.
    """

    _format: ClassVar[str] = ""
    _version: ClassVar[int] = 1

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray | torch.Tensor]]:
        """``(JSON-able header fields, named arrays)`` describing the object completely."""
        raise NotImplementedError

    @classmethod
    def _from_state(cls: type[P], meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    *args: Any, **kwargs: Any) -> P:
        """Rebuild the object from what :meth:`_get_state` returned (plus load-time context)."""
        raise NotImplementedError

    def save(self, path: PathType, *, overwrite: bool = False) -> Path:
        """Write the object to ``path`` atomically; refuse an existing file unless ``overwrite``."""
        meta, arrays = self._get_state()
        return write_npz(path, self._format, meta, arrays, version=self._version,
                         overwrite=overwrite)

    @classmethod
    def load(cls: type[P], path: PathType, *args: Any, **kwargs: Any) -> P:
        """Read an object written by :meth:`save` (``args`` / ``kwargs``: e.g. the model)."""
        meta, arrays = read_npz(path, cls._format, versions=(cls._version,))
        return cls._from_state(meta, arrays, *args, **kwargs)
