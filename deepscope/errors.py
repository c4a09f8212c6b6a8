"""Exception hierarchy of deepscope.

Every error raised at a public boundary is a :class:`DeepscopeError` whose message says what was
wrong and how to fix it. The command-line interface turns these into one-line messages and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations


class DeepscopeError(Exception):
    """Base class of every error deepscope raises on purpose."""


class DataError(DeepscopeError):
    """A dataset is unknown, missing, corrupt or malformed."""


class DataMissingError(DataError):
    """Dataset files are absent and could not be downloaded."""


class DataCorruptError(DataError):
    """A dataset file exists but fails its checksum or cannot be parsed."""


class ModelError(DeepscopeError):
    """A model, architecture name or checkpoint is invalid."""


class CheckpointError(ModelError):
    """A checkpoint file is missing, unreadable or inconsistent."""


class InputError(DeepscopeError, ValueError):
    """An argument has the wrong shape, range, dtype or value."""


class NotFittedError(DeepscopeError, RuntimeError):
    """A fitted object (detector, explainer, ...) was used before ``fit``."""


class RegistryError(DeepscopeError, KeyError):
    """A name is not registered (unknown attack, strategy, dataset, ...)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""
