"""Attacks over shards.

Shards are aligned to the attack's ``batch_size`` (:func:`~deepscope.distributed.shards.
plan_shards`), so each shard runs exactly the local run's batches. Shard ``k`` seeds its
generator with :func:`~deepscope.distributed.shards.shard_seed` ``(seed, k)``: deterministic
attacks (C&W, FGSM, BIM without a random start) give the local result bitwise; stochastic ones
the same result for the same seed and shard size.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope.attacks.base import Attack, AttackResult
from deepscope.distributed.jobs import Job, ModelFile
from deepscope.distributed.shards import shard_seed
from deepscope.distributed.store import digest

#: Prefix of per-sample call arguments (``boxes`` of the glasses attack) in the shipped arrays.
KWARG = "kw:"


def merge_attack_results(parts: list[AttackResult], seconds: float,
                         params: dict[str, Any]) -> AttackResult:
    """Join shard results in order; ``seconds`` is the run's wall time, ``params`` the attack's."""
    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else torch.cat(values)

    first = parts[0]
    tensors = {k: cat(k) for k in ("x_adv", "success", "y", "adv_labels", "l0", "l2", "linf",
                                   "iterations", "target_labels", "mask")}
    return AttackResult(**tensors, seconds=seconds, attack=first.attack,  # type: ignore[arg-type]
                        params=params, target=first.target)


class AttackJob(Job):
    """``attack(x, y, target)`` over shards.

    Parameters
    ----------
    attack : Attack
        The configured attack (its model is not shipped when ``model`` is given).
    target : None, str or int
        As for :meth:`Attack.__call__`; per-sample targets travel as the array ``"target"``.
    model : ModelFile, optional
        Checkpoint the workers load (safe loader) and attack instead of ``attack.model``.
    """

    kind = "attack"

    def __init__(self, attack: Attack, target: Any = None, model: ModelFile | None = None
                 ) -> None:
        self.params = attack.get_params()
        self.target = target
        self.model = model
        self.model_digest = model.sha256 if model is not None else digest(attack.model)
        self.attack_digest = digest(self.params)
        if model is not None:
            attack = copy.copy(attack)
            attack.model = None  # type: ignore[assignment]
        self.attack = attack

    def align(self) -> int:
        return int(self.attack.batch_size)

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "attack": self.attack.name, "params": self.attack_digest,
                "target": repr(self.target), "model": self.model_digest}

    def setup(self) -> Attack:
        atk = copy.copy(self.attack)
        if self.model is not None:
            atk.model = self.model.load().model
        atk.progress = False
        return atk

    def run(self, state: Attack, index: int, start: int,
            arrays: dict[str, np.ndarray]) -> AttackResult:
        atk = copy.copy(state)
        if atk.seed is not None:
            atk.seed = shard_seed(int(atk.seed), index)
        target = torch.from_numpy(arrays["target"]) if "target" in arrays else self.target
        kwargs = {k[len(KWARG):]: torch.from_numpy(v) for k, v in arrays.items()
                  if k.startswith(KWARG)}
        return atk(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]), target=target,
                   **kwargs)

    def save(self, result: AttackResult, path: Path) -> None:
        result.save(path, compress=False)

    def load(self, path: Path) -> AttackResult:
        return AttackResult.load(path)

    def merge(self, parts: list[AttackResult], seconds: float) -> AttackResult:
        return merge_attack_results(parts, seconds, self.params)
