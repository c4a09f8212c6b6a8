"""The tuning settings of :func:`deepscope.debug.repair`, validated once.

>>> from deepscope.debug import RepairConfig
>>> cfg = RepairConfig(budget=4000, strategy="random-label", seed=1)
>>> cfg.rounds
2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deepscope._validate import check_bool, check_int, check_number
from deepscope.debug.selection import check_strategy
from deepscope.errors import InputError

__all__ = ["RepairConfig"]


@dataclass(frozen=True)
class RepairConfig:
    """How :func:`~deepscope.debug.repair` repairs (everything but the data and the callbacks).

    Attributes
    ----------
    budget : int
        Maximum number of pool inputs added (default 20,000).
    strategy : str
        A registered selection strategy (``mode``, ``random``, ``random-label``, ``failing``,
        ``deepgini``, ``auto``).
    seed : int
        Seeds selection, replay and fine-tuning (and the automatic validation hold-out).
    batch : int
        Inputs added per round; ``selected_share`` of them chosen by the strategy, the rest
        uniformly at random.
    selected_share : float
        In (0, 1].
    epochs_per_round, lr, batch_size : int, float, int
        Fine-tuning settings of each round.
    replay : float
        Replay size / new inputs per round (0 = no replay).
    target : float, optional
        Validation label accuracy that counts as fixed (default: see ``debug.repair``).
    until_fixed : bool
        Stop at the first fixed round (default); ``False`` spends the whole budget.
    layer : str, optional
        Force the analysed layer of ``mode``.
    strategy_params : mapping
        Keyword parameters of the strategy (e.g. ``{"clusters": 4}`` for ``auto``).
    """

    budget: int = 20000
    strategy: str = "auto"
    seed: int = 0
    batch: int = 2000
    selected_share: float = 0.25
    epochs_per_round: int = 1
    lr: float = 5e-4
    batch_size: int = 128
    replay: float = 1.0
    target: float | None = None
    until_fixed: bool = True
    layer: str | None = None
    strategy_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("budget", "batch", "epochs_per_round", "batch_size"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low=1))
        object.__setattr__(self, "seed", check_int("seed", self.seed, low=0))
        check_number("selected_share", self.selected_share, low=0.0, high=1.0, low_open=True)
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("replay", self.replay, low=0.0)
        if self.target is not None:
            check_number("target", self.target, low=0.0, high=1.0)
        check_bool("until_fixed", self.until_fixed)
        if self.layer is not None and not isinstance(self.layer, str):
            raise InputError(f"layer must be a layer name (str), got {self.layer!r}")
        if not isinstance(self.strategy_params, Mapping):
            raise InputError("strategy_params must be a mapping of keyword parameters")
        object.__setattr__(self, "strategy_params", dict(self.strategy_params))
        check_strategy(self.strategy, self.strategy_params)

    @classmethod
    def from_settings(cls, budget: int | None = None, **settings: Any) -> RepairConfig:
        """A config from :func:`~deepscope.debug.repair`'s keyword settings (unknown keys
        raise :class:`~deepscope.errors.InputError`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(f"repair got unknown setting(s) {unknown}; valid: "
                             f"{', '.join(sorted(known | {'budget'}))}")
        if budget is not None:
            settings["budget"] = budget
        return cls(**settings)

    @property
    def rounds(self) -> int:
        """Rounds needed to spend the whole budget."""
        return -(-self.budget // self.batch)

    def round_sizes(self, used: int) -> tuple[int, int]:
        """(inputs to add, of which chosen by the strategy) after ``used`` inputs."""
        n = min(self.batch, self.budget - used)
        return n, max(1, round(self.selected_share * n))

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
