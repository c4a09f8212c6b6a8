"""Tiny name → object registries that feed the CLI's choices.

Example
-------
>>> ATTACKS = Registry("attack")
>>> @ATTACKS.register("fgsm")
... class FGSM: ...
>>> ATTACKS.get("fgsm") is FGSM
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from deepscope.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping from names to registered objects.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages (e.g. ``"attack"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raise a helpful error otherwise."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self._items) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; choose one of: {known}") from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
