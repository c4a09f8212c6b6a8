"""The random streams of one repair round, derived from the run's seed and the round number.

Every stream comes from :mod:`deepscope._seeds` (``numpy.random.SeedSequence``) with the key
``(stream, round)``, so streams are independent, reproducible, and adding a stream never shifts
another. (Before deepscope's redesign they were ad hoc: ``seed * 100003 + round`` and the
like; the numbers of a repair therefore moved within seed noise with that change.)

The analysis (feature models, subset heat maps) keeps the run's seed itself, as
:class:`~deepscope.debug.FeatureModels` does, so that a report's analysis and a repair's agree.
"""

from __future__ import annotations

from typing import Any

from deepscope._seeds import derive_seed, numpy_rng

__all__ = ["STREAMS", "round_seeds"]

#: stream name → key of its SeedSequence (never renumber: it would change every result)
STREAMS = {"select": 1, "fill": 2, "replay": 3, "fit": 4}


def round_seeds(seed: int, rnd: int) -> dict[str, Any]:
    """Streams of round ``rnd``: ``select`` (the strategy's picks), ``fill`` (the uniform picks)
    and ``replay`` as numpy Generators, ``fit`` (the fine-tuning seed) as an int."""
    return {"select": numpy_rng(seed, STREAMS["select"], rnd),
            "fill": numpy_rng(seed, STREAMS["fill"], rnd),
            "replay": numpy_rng(seed, STREAMS["replay"], rnd),
            "fit": derive_seed(seed, STREAMS["fit"], rnd)}
