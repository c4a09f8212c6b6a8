"""The :class:`Attack` base class, :class:`AttackResult` and the attack registry.

An attack is built with its parameters (validated at construction) and called on a batch::

    attack = deepscope.attacks.get("cw-l2", model, steps=200)
    result = attack(x, y, target="next")      # x: N×C×H×W in [0, 1], y: int64 labels
    result.x_adv, result.success, result.l2

Targets (the two of the AmI evaluation plus untargeted):

- ``None``: untargeted, success when the predicted label differs from ``y``;
- ``"first"``: every sample towards label 0;
- ``"next"``: towards ``(y + 1) mod K``;
- an integer or an int tensor of N labels: towards those labels.

For a targeted attack, success means the predicted label equals the target. A sample whose
target equals its own label is attacked like any other: if the model already predicts it,
it succeeds with zero perturbation (select such samples out beforehand when that matters).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deepscope._jsonable import to_jsonable
from deepscope._persist import read_npz, write_npz
from deepscope._typing import PathType
from deepscope.attacks._checks import (
    check_attack_images,
    check_label_range,
    check_labels,
    check_number,
)
from deepscope.errors import InputError, RegistryError
from deepscope.models.execution import batched, inference
from deepscope.protocol import Params
from deepscope.registry import Registry

__all__ = [
    "ATTACKS",
    "L0_TOL",
    "Attack",
    "AttackResult",
    "get",
    "model_guard",
    "names",
    "perturbation_norms",
]

ATTACKS: Registry[type[Attack]] = Registry("attack")

_RESULT_FORMAT = "attack-result"
_RESULT_ARRAYS = ("x_adv", "success", "y", "adv_labels", "l0", "l2", "linf", "iterations",
                  "target_labels", "mask")

#: A pixel counts as changed (for L0) when any of its channels moved by more than this.
L0_TOL = 1e-6

_TARGET_MODES = ("first", "next")


def perturbation_norms(
    x: torch.Tensor, x_adv: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample L0, L2 and L∞ norms of ``x_adv - x``.

    L0 counts *pixels* (spatial positions h, w), not values: a pixel is changed when any of
    its channels differs by more than :data:`L0_TOL`. L2 and L∞ are taken over all C×H×W
    values. L0 is int64, L2 and L∞ have the dtype of ``x``.
    """
    d = (x_adv - x).flatten(2)  # N×C×(H·W)
    l0 = (d.abs().amax(dim=1) > L0_TOL).sum(dim=1)
    flat = d.flatten(1)
    return l0, flat.norm(dim=1), flat.abs().amax(dim=1)


@contextmanager
def model_guard(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode with frozen parameters; restore both on exit.

    :func:`deepscope.models.execution.inference` with ``freeze=True`` and the caller's autograd
    setting: backward passes compute input gradients only, and every submodule's ``training``
    and every parameter's ``requires_grad`` come back on exit, also when the block raises.
    """
    with inference(model, grad=None, freeze=True):
        yield model


@dataclass(frozen=True, eq=False)
class AttackResult:
    """What an attack produced, per sample, plus how it was run.

    Attributes
    ----------
    x_adv : torch.Tensor
        Adversarial inputs, N×C×H×W in [0, 1], device and dtype of the input. Samples where
        the attack failed hold its best attempt (the original input for the minimising C&W
        attacks).
    success : torch.Tensor
        Bool (N,): the model's label for ``x_adv`` differs from ``y`` (untargeted) or equals
        ``target_labels`` (targeted). Computed by re-running the model on ``x_adv``.
    y : torch.Tensor
        The true labels (int64, N).
    adv_labels : torch.Tensor
        The model's labels for ``x_adv`` (int64, N).
    l0, l2, linf : torch.Tensor
        Per-sample norms of ``x_adv - x`` (see :func:`perturbation_norms`).
    iterations : torch.Tensor
        Gradient evaluations (forward + backward passes) spent on each sample (int64, N).
    seconds : float
        Wall-clock time of the whole call.
    attack : str
        Registered name of the attack.
    params : Mapping[str, Any]
        The attack's parameters.
    target : str or None
        ``None`` (untargeted), ``"first"``, ``"next"`` or ``"custom"`` (explicit labels).
    target_labels : torch.Tensor or None
        The target label of every sample (int64, N) for targeted attacks.
    mask : torch.Tensor or None
        For masked attacks (patch, glasses): bool N×1×H×W of the pixels the attack may change.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    y: torch.Tensor
    adv_labels: torch.Tensor
    l0: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor
    iterations: torch.Tensor
    seconds: float
    attack: str
    params: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None
    target_labels: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x_adv.shape[0])

    def __repr__(self) -> str:
        d = self.to_dict()
        l2 = "–" if d["mean_l2"] is None else f"{d['mean_l2']:.4g}"
        return (f"AttackResult(attack={self.attack!r}, target={self.target!r}, n={d['n']}, "
                f"success_rate={d['success_rate']:.3f}, mean_l2={l2}, "
                f"seconds={self.seconds:.3g})")

    # ------------------------------------------------------------------ persistence
    def save(self, path: PathType, *, overwrite: bool = False, x: torch.Tensor | None = None,
             compress: bool = True) -> Path:
        """Write the result to ``path`` (``.npz``, atomic, no pickle).

        The archive holds ``x_adv``, ``success``, ``y``, ``adv_labels``, ``l0``, ``l2``,
        ``linf``, ``iterations``, ``target_labels`` (targeted attacks), ``mask`` (masked
        attacks), ``x`` (the attacked inputs, when given), ``summary_json`` (:meth:`to_dict`)
        and the JSON header of :mod:`deepscope._persist`. An existing file is refused unless
        ``overwrite``.
        """
        arrays: dict[str, Any] = {k: getattr(self, k) for k in _RESULT_ARRAYS
                                  if getattr(self, k) is not None}
        if x is not None:
            if not isinstance(x, torch.Tensor) or x.shape != self.x_adv.shape:
                raise InputError(f"x must be a tensor of shape {tuple(self.x_adv.shape)} "
                                 "(the attacked inputs)")
            arrays["x"] = x
        summary = self.to_dict()
        arrays["summary_json"] = np.array(json.dumps(to_jsonable(summary)))
        meta = {"attack": self.attack, "target": self.target, "seconds": self.seconds,
                "params": summary["params"]}
        return write_npz(path, _RESULT_FORMAT, meta, arrays, overwrite=overwrite,
                         compress=compress)

    @classmethod
    def load(cls, path: PathType) -> AttackResult:
        """Read a result written by :meth:`save` (the inputs ``x``, if saved, are not part of
        the result: read them with :func:`deepscope.attacks.load_npz`)."""
        meta, arrays = read_npz(path, _RESULT_FORMAT)
        tensors = {k: torch.from_numpy(arrays[k]) for k in _RESULT_ARRAYS if k in arrays}
        return cls(**tensors, seconds=float(meta["seconds"]), attack=str(meta["attack"]),
                   params=dict(meta.get("params") or {}), target=meta.get("target"))

    @property
    def targeted(self) -> bool:
        """Whether the attack aimed at given labels."""
        return self.target_labels is not None

    @property
    def success_rate(self) -> float:
        """Share of samples where the attack succeeded."""
        return float(self.success.float().mean())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: success rate, mean norms over successes, time per 100 images.

        Means over successes are ``None`` when no sample succeeded.
        """
        ok = self.success

        def mean_ok(v: torch.Tensor) -> float | None:
            return float(v[ok].double().mean()) if bool(ok.any()) else None

        n = len(self)
        return {
            "attack": self.attack,
            "params": to_jsonable(self.params, tensors="shape"),
            "target": self.target,
            "n": n,
            "n_success": int(ok.sum()),
            "success_rate": self.success_rate,
            "mean_l0": mean_ok(self.l0),
            "mean_l2": mean_ok(self.l2),
            "mean_linf": mean_ok(self.linf),
            "mean_iterations": float(self.iterations.double().mean()),
            "seconds": self.seconds,
            "seconds_per_100": self.seconds / n * 100.0,
        }


class Attack(Params):
    """Base class of every attack.

    Subclasses set :attr:`name`, validate their own parameters in ``__init__`` (keyword-only,
    stored under the same attribute names) and implement :meth:`_attack_batch`. Masked
    attacks also override :meth:`_prepare` to build per-sample auxiliary tensors.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier mapping N×C×H×W inputs in [0, 1] to N×K logits.
    batch_size : int
        Samples attacked together.
    seed : int or None
        Seed of the ``torch.Generator`` (on the input's device) used by stochastic attacks;
        ``None`` draws a fresh seed.
    progress : bool
        Show a progress bar over the batches.
    """

    name: ClassVar[str] = ""
    #: Whether the attack bounds its perturbation by ``eps`` in L∞.
    bounded_linf: ClassVar[bool] = False
    #: Whether the attack may only change the pixels of a mask (``result.mask``).
    masked: ClassVar[bool] = False

    def __init__(
        self, model: nn.Module, *, batch_size: int = 256, seed: int | None = 0,
        progress: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InputError(
                f"model must be a torch.nn.Module returning logits, got {type(model).__name__}"
            )
        self.model = model
        self.batch_size = check_number("batch_size", batch_size, low=1, integer=True)
        if seed is not None:
            check_number("seed", seed, low=0, integer=True)
        self.seed = seed
        self.progress = bool(progress)

    # ------------------------------------------------------------------ the call
    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, target: Any = None, **kwargs: Any
    ) -> AttackResult:
        """Attack ``x`` (true labels ``y``) untargeted or towards ``target``.

        Parameters
        ----------
        x : torch.Tensor
            Floating N×C×H×W images in [0, 1] (of the model's input shape, for a zoo model);
            the attack runs on its device and in the model's dtype (other floating dtypes,
            e.g. float64, are converted to it).
        y : torch.Tensor
            Integer labels (N,) in ``[0, K)``.
        target : None, "first", "next", int or torch.Tensor
            See the module docstring.
        **kwargs
            Per-call inputs of specific attacks (e.g. ``boxes`` for ``glasses``,
            ``location`` for ``patch``).

        Returns
        -------
        AttackResult
        """
        start = time.perf_counter()
        x = check_attack_images(self.model, x)
        n = x.shape[0]
        y = check_labels(y, n, x.device)
        gen = torch.Generator(device=x.device)
        if self.seed is None:
            gen.seed()  # non-deterministic, leaves the global RNG alone
        else:
            gen.manual_seed(self.seed)

        with model_guard(self.model):
            num_classes = self._num_classes(x)
            check_label_range(y, num_classes)
            spec, target_labels = _resolve_target(target, y, num_classes)
            aux = self._prepare(x, y, gen, **kwargs)
            x_adv = torch.empty_like(x)
            iterations = torch.zeros(n, dtype=torch.int64, device=x.device)
            adv_labels = torch.empty(n, dtype=torch.int64, device=x.device)
            bar = tqdm(total=n, desc=self.name, unit="img", disable=not self.progress,
                       leave=False, mininterval=0.5)
            try:
                for s in range(0, n, self.batch_size):
                    sl = slice(s, s + self.batch_size)
                    tb = None if target_labels is None else target_labels[sl]
                    auxb = {k: v[sl] for k, v in aux.items()}
                    self._ticker = _BatchProgress(bar, s, x[sl].shape[0])
                    with torch.enable_grad():
                        xb, it = self._attack_batch(x[sl], y[sl], tb, auxb, gen)
                    xb = xb.detach().clamp(0.0, 1.0)
                    x_adv[sl] = xb
                    iterations[sl] = it
                    adv_labels[sl] = self._labels(xb)
                    self._ticker.done()
            finally:
                self._ticker = None
                bar.close()

        if target_labels is None:
            success = adv_labels != y
        else:
            success = adv_labels == target_labels
        l0, l2, linf = perturbation_norms(x, x_adv)
        return AttackResult(
            x_adv=x_adv, success=success, y=y, adv_labels=adv_labels, l0=l0, l2=l2,
            linf=linf, iterations=iterations, seconds=time.perf_counter() - start,
            attack=self.name, params=self.get_params(), target=spec,
            target_labels=target_labels, mask=aux.get("mask"),
        )

    # ------------------------------------------------------------------ hooks for subclasses
    def _prepare(
        self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        """Per-sample auxiliary tensors (first dim N), sliced per batch. Default: none."""
        if kwargs:
            raise InputError(
                f"attack {self.name!r} takes no extra call arguments, got {sorted(kwargs)}"
            )
        return {}

    def _attack_batch(
        self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
        aux: dict[str, torch.Tensor], gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attack one batch; return adversarial images and iterations per sample."""
        raise NotImplementedError

    def _tick(self, fraction: float, step: int | None = None) -> None:
        """Report progress inside the current batch (``fraction`` of it done, in [0, 1]).

        Iterative attacks call this once per optimisation step, so the bar moves during a
        batch instead of only after it; ``step`` is shown next to the bar. A no-op outside
        :meth:`__call__`.
        """
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker(fraction, step)

    def estimated_cost(self) -> int:
        """Upper estimate of gradient evaluations per input (1 for a one-step attack).

        Used to pick default input counts (``deepscope attack`` without ``--n``); iterative
        attacks report steps × restarts/rounds from their parameters.
        """
        return int(getattr(self, "steps", 1))

    def _labels(self, x: torch.Tensor) -> torch.Tensor:
        """The model's labels of ``x`` (no autograd graph)."""
        return batched(self.model, x, batch_size=self.batch_size).argmax(dim=1)

    def _num_classes(self, x: torch.Tensor) -> int:
        out = batched(self.model, x[:1])
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(
                f"the model must return N×K logits with K >= 2, got {shape}; wrap it so "
                "that forward() returns the logits tensor"
            )
        return int(out.shape[1])


class _BatchProgress:
    """Moves a bar counting images by fractions of the current batch (``start``, ``size``)."""

    def __init__(self, bar: Any, start: int, size: int) -> None:
        self.bar, self.start, self.size = bar, start, size

    def __call__(self, fraction: float, step: int | None = None) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        value = round(self.start + fraction * self.size, 2)
        if step is not None:
            self.bar.set_postfix_str(f"step {step}", refresh=False)
        if value > self.bar.n:
            self.bar.update(value - self.bar.n)
        elif step is not None:
            self.bar.update(0)  # redraws (at most every mininterval) to show the step

    def done(self) -> None:
        self.bar.update(self.start + self.size - self.bar.n)


def _resolve_target(
    target: Any, y: torch.Tensor, num_classes: int
) -> tuple[str | None, torch.Tensor | None]:
    """Turn a target spec into (spec name, int64 target labels or None)."""
    if target is None:
        return None, None
    if isinstance(target, str):
        if target == "first":
            return "first", torch.zeros_like(y)
        if target == "next":
            return "next", (y + 1) % num_classes
        raise InputError(
            f"unknown target {target!r}; use None (untargeted), 'first', 'next' or labels"
        )
    if isinstance(target, bool):
        raise InputError("target must be None, 'first', 'next', an int or an int tensor")
    if isinstance(target, int):
        labels = torch.full_like(y, target)
    elif isinstance(target, torch.Tensor):
        if target.dim() == 0:
            target = target.reshape(1).expand(y.shape[0])
        labels = check_labels(target, y.shape[0], y.device, name="target")
    else:
        raise InputError(
            f"target must be None, 'first', 'next', an int or an int tensor, got "
            f"{type(target).__name__}"
        )
    check_label_range(labels, num_classes, name="target")
    return "custom", labels


def names() -> list[str]:
    """Registered attack names, e.g. ``['fgsm', 'bim', 'cw-l2', ...]``."""
    return ATTACKS.names()


def get(name: str, model: nn.Module, **params: Any) -> Attack:
    """Build the attack registered as ``name`` on ``model`` with ``params``.

    Raises
    ------
    RegistryError
        ``name`` is not a registered attack.
    InputError
        A parameter is unknown or invalid.
    """
    if not isinstance(name, str):
        raise RegistryError(f"attack name must be a string, got {name!r}")
    cls = ATTACKS.get(name)
    cls.check_params(params, what=f"attack {name!r}")
    return cls(model, **params)
