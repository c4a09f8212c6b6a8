"""The attribute-steered model: the original model with witness neurons strengthened and the
other neurons weakened at chosen layers (AmI), through :func:`deepscope.models.hooks.intervene`.

At each steered layer, per input, with ``μ``, ``σ`` and ``min`` the mean, standard deviation and
minimum of the activations of that layer's witness neurons (all locations):

- non-witnesses (weakening):   ``v' = exp(-(v - μ) / (α·σ)) · v``
- witnesses (strengthening):   ``v' = ε·v + (1 - exp(-(v - min) / (β·σ))) · v``

A layer without witnesses is left unchanged. ``clamp=True`` caps the weakening factor at 1
(the formula otherwise *amplifies* activations below ``μ``, by up to ``exp(μ / (α·σ))``; with
a small α that blows up near-zero activations); ``clamp=False`` is the literal formula.

Detection needs the original and the steered logits. The model is cut with
:func:`deepscope.models.hooks.split` after the first steered layer: the prefix runs once, and
the suffix runs on the batch ``[h, steer(h)]`` with the remaining steered layers rewriting only
the second half. The cost is one prefix plus two suffix passes (≤ 2 forward passes, close to 1
when the steered layers are late).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from deepscope.detect.ami.witnesses import WitnessSet
from deepscope.errors import InputError
from deepscope.models import hooks
from deepscope.models.execution import inference, model_device

__all__ = ["SteeredModel", "SteeringConfig", "steer_activation", "steered_margin"]


@dataclass(frozen=True)
class SteeringConfig:
    """Parameters of the steered model.

    Attributes
    ----------
    layers : tuple of str
        Steered layers (dotted names; each must have witnesses extracted).
    alpha : float
        Weakening factor α (smaller = harder weakening).
    beta : float
        Strengthening factor β.
    epsilon : float
        Strengthening factor ε (1 = witnesses keep their value plus the boost).
    weaken, strengthen : bool
        Switch either transformation off (ablations).
    clamp : bool
        Cap the weakening factor at 1 (see the module docstring).
    """

    layers: tuple[str, ...]
    alpha: float = 0.1
    beta: float = 1.0
    epsilon: float = 1.0
    weaken: bool = True
    strengthen: bool = True
    clamp: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise InputError("a steering configuration needs at least one layer")
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise InputError(f"{name} must be a positive number, got {v!r}")
        if not isinstance(self.epsilon, (int, float)) or self.epsilon < 0:
            raise InputError(f"epsilon must be a non-negative number, got {self.epsilon!r}")
        if not (self.weaken or self.strengthen):
            raise InputError("steering with neither weakening nor strengthening changes nothing")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d


def steer_activation(v: torch.Tensor, witnesses: torch.Tensor, config: SteeringConfig
                     ) -> torch.Tensor:
    """Apply the weakening/strengthening formulas to one layer's output ``v`` (N×C[×H×W])."""
    if witnesses.numel() == 0:  # no witnesses at this layer: nothing to steer by
        return v
    n, c = v.shape[:2]
    is_w = torch.zeros(c, dtype=torch.bool, device=v.device)
    if witnesses.numel():
        is_w[witnesses.to(v.device)] = True
    shape = (1, c) + (1,) * (v.ndim - 2)
    is_w = is_w.view(shape)
    ref = v[:, is_w.flatten()]
    flat = ref.reshape(n, -1)
    stat_shape = (n,) + (1,) * (v.ndim - 1)
    mu = flat.mean(1).view(stat_shape)
    sigma = flat.std(1, unbiased=False).view(stat_shape).clamp_min(1e-6)
    vmin = flat.amin(1).view(stat_shape)
    out = v
    if config.weaken:
        factor = torch.exp((-(v - mu) / (config.alpha * sigma)).clamp(max=60.0))
        if config.clamp:
            factor = factor.clamp(max=1.0)
        out = torch.where(is_w, out, factor * v)
    if config.strengthen:
        boosted = config.epsilon * v + (1 - torch.exp(-(v - vmin) / (config.beta * sigma))) * v
        out = torch.where(is_w, boosted, out)
    return out


class SteeredModel:
    """Original and attribute-steered logits of a model, sharing the unsteered prefix.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (a tree of ``nn.Sequential`` gets the prefix reuse; any other model
        falls back to running the whole model on ``[x, x]``).
    witnesses : WitnessSet
        Witness neurons; must cover ``config.layers``.
    config : SteeringConfig
        Steering parameters.
    witness_override : dict, optional
        Channels to steer per layer instead of the witnesses' union.
    reuse_prefix : bool
        Run the unsteered prefix once (default); False runs the whole model on ``[x, x]``
        (the naive cost, for comparisons).
    """

    def __init__(self, model: nn.Module, witnesses: WitnessSet, config: SteeringConfig,
                 witness_override: dict[str, torch.Tensor] | None = None, *,
                 reuse_prefix: bool = True) -> None:
        missing = [layer for layer in config.layers if layer not in witnesses.layers]
        if missing:
            raise InputError(f"steered layers {missing} have no extracted witnesses; "
                             f"available: {list(witnesses.layers)}")
        self.model = model
        self.config = config
        order = {name: i for i, name in enumerate(hooks.layer_names(model))}
        self.layers = tuple(sorted(config.layers, key=lambda n: order[n]))
        override = witness_override or {}
        self.channels = {layer: override.get(layer, witnesses.layer_channels(layer))
                         for layer in self.layers}
        self.prefix = self.suffix = None
        if reuse_prefix:
            try:
                self.prefix, self.suffix = hooks.split(model, self.layers[0])
            except InputError:
                pass

    def _steer(self, layer: str, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
        chans = self.channels[layer]

        def fn(v: torch.Tensor) -> torch.Tensor:
            return torch.cat([v[:n], steer_activation(v[n:], chans, self.config)])

        return fn

    def logits(self, x: torch.Tensor, *, grad: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(original logits, steered logits)`` of a batch, in eval mode; without autograd
        graph unless ``grad`` (adaptive attacks differentiate both through ``x``)."""
        n = x.shape[0]
        with inference(self.model, grad=bool(grad)):
            x = x.to(model_device(self.model))
            z = self._prefix_logits(x) if self.prefix is not None else self._full_logits(x)
        return z[:n], z[n:]

    def _prefix_logits(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        h = self.prefix(x)  # type: ignore[misc]
        hh = torch.cat([h, steer_activation(h, self.channels[self.layers[0]], self.config)])
        rest = {layer: self._steer(layer, n) for layer in self.layers[1:]}
        if not rest:
            return self.suffix(hh)  # type: ignore[misc]
        with hooks.intervene(self.suffix, rest):  # type: ignore[arg-type]
            return self.suffix(hh)  # type: ignore[misc]

    def _full_logits(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        with hooks.intervene(self.model, {layer: self._steer(layer, n)
                                          for layer in self.layers}):
            return self.model(torch.cat([x, x]))

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(score, original label, steered label)``; score = steered margin against the
        original label (best other logit − original label's logit; > 0 ⇔ the label flips)."""
        z0, z1 = self.logits(x)
        y0 = z0.argmax(1)
        return steered_margin(z1, y0), y0, z1.argmax(1)


def steered_margin(z1: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    """Best other logit minus the logit of label ``y0`` (> 0 ⇔ the label is not kept)."""
    own = z1.gather(1, y0[:, None]).squeeze(1)
    other = z1.scatter(1, y0[:, None], float("-inf")).amax(1)
    return other - own
