"""How a batch of inputs is cut into shards, and the seed each shard gets.

The rule (:func:`plan_shards`): without an explicit ``shard_size``, ``n`` inputs over ``workers``
workers are cut into about :data:`SHARDS_PER_WORKER` shards per worker —
``size = ceil(n / (SHARDS_PER_WORKER · workers))`` — rounded *up* to a multiple of ``align``.
Several shards per worker balance uneven shards and bound what a dead worker costs (one shard);
``align`` is the batch size of a technique that runs its inputs in batches (attacks, the
model-batched explainers), so that every shard's batches are exactly the batches of the local
run and the results are bitwise the same. Shards are contiguous and in input order; the last
one may be shorter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from deepscope._seeds import derive_seed
from deepscope._validate import check_int

#: Shards per worker when the size is not given.
SHARDS_PER_WORKER = 4


@dataclass(frozen=True)
class ShardPlan:
    """Contiguous shards of ``n`` inputs, ``size`` each (the last may be shorter).

    Attributes
    ----------
    n : int
        Number of inputs.
    size : int
        Inputs per shard.
    """

    n: int
    size: int

    def __len__(self) -> int:
        return math.ceil(self.n / self.size) if self.n else 0

    def bounds(self, index: int) -> tuple[int, int]:
        """``(start, stop)`` of shard ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"shard {index} of {len(self)}")
        start = index * self.size
        return start, min(start + self.size, self.n)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary."""
        return {"n": self.n, "size": self.size, "shards": len(self)}


def plan_shards(n: int, workers: int, *, shard_size: int | None = None,
                align: int = 1) -> ShardPlan:
    """Cut ``n`` inputs into shards for ``workers`` workers (the rule of the module docstring).

    Parameters
    ----------
    n : int
        Number of inputs.
    workers : int
        Number of workers.
    shard_size : int, optional
        Inputs per shard; used as given (bitwise equality with the local run of a batched
        technique then needs a multiple of its batch size).
    align : int
        Round the automatic size up to a multiple of this.
    """
    n = check_int("n", n, low=0)
    workers = check_int("workers", workers, low=1)
    align = check_int("align", align, low=1)
    if shard_size is not None:
        return ShardPlan(n, check_int("shard_size", shard_size, low=1))
    size = max(1, math.ceil(n / (SHARDS_PER_WORKER * workers)))
    return ShardPlan(n, align * math.ceil(size / align))


def shard_seed(seed: int, index: int) -> int:
    """The seed of shard ``index`` of a run seeded with ``seed`` (independent streams)."""
    return derive_seed(seed, index)
