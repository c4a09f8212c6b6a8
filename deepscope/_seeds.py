"""Seeds derived with :class:`numpy.random.SeedSequence`, the one way deepscope splits a seed.

A user gives one integer; every stochastic step derives its own stream from it and a tuple of
integer keys naming the step (a round number, a shard index, a stage constant), so streams are
independent and reproducible, and adding a step never shifts another step's stream.

Example
-------
>>> derive_seed(0, 3) == derive_seed(0, 3)
True
>>> derive_seed(0, 3) != derive_seed(0, 4)
True
"""

from __future__ import annotations

import numpy as np
import torch

from deepscope.errors import InputError


def _check(seed: int, keys: tuple[int, ...]) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    for k in keys:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise InputError(f"seed keys must be non-negative integers, got {k!r}")


def seed_sequence(seed: int, *keys: int) -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` of ``seed`` for the step named by ``keys``."""
    _check(seed, keys)
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in keys))


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit integer seed for the step ``keys`` of a run seeded with ``seed``."""
    return int(seed_sequence(seed, *keys).generate_state(1, np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int, *keys: int) -> np.random.Generator:
    """A numpy generator for the step ``keys`` of a run seeded with ``seed``."""
    return np.random.default_rng(seed_sequence(seed, *keys))


def torch_generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator (on ``device``) for the step ``keys`` of a run seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))
