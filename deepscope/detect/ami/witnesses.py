"""Attribute witnesses by bi-directional reasoning (AmI).

For every attribute ``a`` and layer ``l`` (neuron = channel for convolutional layers) we draw
seeded (recipient, donor) pairs and run three images through the model: the recipient, the
recipient with ``a`` *substituted* by the donor's, and the donor with the recipient's ``a``
*preserved*. Per pair and neuron we measure how much the neuron changed in each direction:

- ``rule="normalized"`` (default): the mean absolute change over the attribute's region in the
  feature map (the image box scaled to the map, dilated by ``region_pad`` cells), divided by
  the neuron's standard deviation over the benign images, so changes are comparable between
  neurons of different scale;
- ``rule="literal"``: the raw absolute change of the neuron's mean over the whole map (what
  the prototype did; raw changes mostly track a neuron's scale).

A neuron *votes* for ``a`` in a pair when (``criterion="both"``)

- normalized rule: the share of its change explained by the attribute,
  ``d_sub / (d_sub + d_pres)``, is above the median over the layer's neurons (a neuron that
  changes when the attribute is swapped and stays when only the context is swapped; the ratio
  is scale-free, so big neurons do not win by size);
- literal rule: its substitution change is above the layer's median AND its preservation
  change is below the median.

The ablations vote on one side only (``"substitution"``: change above the median;
``"preservation"``: change below the median). Witnesses are the neurons whose vote frequency
over the pairs is at least ``min_vote`` (default 0.75 normalized, 1.0 = the literal
intersection over all pairs), best first, at most ``top_k`` per layer and attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deepscope._validate import check_int, check_number
from deepscope.detect.ami.attributes import AttributeSet, pair_up, preserve, substitute
from deepscope.errors import InputError
from deepscope.models import hooks
from deepscope.models.execution import batch_slices, inference, model_device

__all__ = ["CRITERIA", "RULES", "WitnessSet", "extract_witness_variants", "extract_witnesses"]

RULES = ("normalized", "literal")
CRITERIA = ("both", "substitution", "preservation")


@dataclass(frozen=True)
class WitnessSet:
    """Witness neurons per layer and attribute.

    Attributes
    ----------
    layers : tuple of str
        Dotted layer names, in model order.
    attributes : tuple of str
        Attribute names.
    channels : dict
        ``channels[layer][attribute]`` → tuple of neuron (channel) indices, best first.
    num_neurons : dict
        Neurons (channels) per layer.
    votes : dict
        ``votes[layer]`` → A×C float tensor of vote frequencies (empty for random sets).
    params : dict
        How the set was made (rule, criterion, top_k, min_vote, n_pairs, seed, ...).
    """

    layers: tuple[str, ...]
    attributes: tuple[str, ...]
    channels: dict[str, dict[str, tuple[int, ...]]]
    num_neurons: dict[str, int]
    votes: dict[str, torch.Tensor] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def layer_channels(self, layer: str) -> torch.Tensor:
        """Sorted union of the witnesses of every attribute at ``layer`` (int64)."""
        found = sorted({c for chans in self.channels[layer].values() for c in chans})
        return torch.tensor(found, dtype=torch.long)

    def shared(self, layer: str) -> tuple[int, ...]:
        """Neurons that are witnesses of every attribute at ``layer``."""
        sets = [set(c) for c in self.channels[layer].values()]
        return tuple(sorted(set.intersection(*sets))) if sets else ()

    def counts(self) -> dict[str, dict[str, int]]:
        """``{row: {layer: count}}`` with one row per attribute plus ``"shared"``."""
        out = {a: {layer: len(self.channels[layer][a]) for layer in self.layers}
               for a in self.attributes}
        out["shared"] = {layer: len(self.shared(layer)) for layer in self.layers}
        return out

    def total(self, layer: str) -> int:
        return int(self.layer_channels(layer).numel())

    def random_like(self, seed: int = 0) -> WitnessSet:
        """A control set: per layer as many random neurons as this set's union, same layers."""
        gen = torch.Generator().manual_seed(seed)
        channels: dict[str, dict[str, tuple[int, ...]]] = {}
        for layer in self.layers:
            k = self.total(layer)
            pick = torch.randperm(self.num_neurons[layer], generator=gen)[:k].sort().values
            chans = tuple(int(c) for c in pick)
            # the random neurons are not tied to attributes: list them under every attribute's
            # union only once (first attribute), so the per-layer union has exactly k neurons
            channels[layer] = {a: (chans if i == 0 else ()) for i, a in enumerate(self.attributes)}
        return WitnessSet(self.layers, self.attributes, channels, dict(self.num_neurons), {},
                          {**self.params, "random_control": True, "random_seed": seed})

    def restrict(self, layers: tuple[str, ...] | list[str]) -> WitnessSet:
        """The same witnesses on a subset of the layers."""
        missing = [layer for layer in layers if layer not in self.layers]
        if missing:
            raise InputError(f"no witnesses were extracted for layers {missing}; available: "
                             f"{list(self.layers)}")
        keep = tuple(layer for layer in self.layers if layer in layers)
        return WitnessSet(keep, self.attributes, {k: self.channels[k] for k in keep},
                          {k: self.num_neurons[k] for k in keep},
                          {k: v for k, v in self.votes.items() if k in keep}, dict(self.params))

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "attributes": list(self.attributes),
            "channels": {layer: {a: list(c) for a, c in d.items()}
                         for layer, d in self.channels.items()},
            "num_neurons": dict(self.num_neurons),
            "counts": self.counts(),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], votes: dict[str, torch.Tensor] | None = None
                  ) -> WitnessSet:
        return cls(tuple(d["layers"]), tuple(d["attributes"]),
                   {layer: {a: tuple(int(v) for v in c) for a, c in dd.items()}
                    for layer, dd in d["channels"].items()},
                   {k: int(v) for k, v in d["num_neurons"].items()}, dict(votes or {}),
                   dict(d.get("params", {})))


def _region_map(mask: torch.Tensor, size: tuple[int, int], pad: int) -> torch.Tensor:
    """Image-resolution masks (n×1×H×W) → binary feature-map region (n×1×h×w)."""
    m = (F.adaptive_avg_pool2d(mask, size) > 0).to(mask.dtype)
    if pad > 0:
        m = F.max_pool2d(m, 2 * pad + 1, stride=1, padding=pad)
    # a region that vanished (tiny box) falls back to the whole map
    empty = m.flatten(1).sum(1) == 0
    if bool(empty.any()):
        m[empty] = 1
    return m


def _changes(orig: torch.Tensor, other: torch.Tensor, region: torch.Tensor | None, rule: str
             ) -> torch.Tensor:
    """Per-sample, per-neuron change (n×C) between two activations."""
    if orig.ndim == 2:  # dense layer: a neuron is one unit
        return (other - orig).abs()
    if rule == "literal":
        return (other.flatten(2).mean(2) - orig.flatten(2).mean(2)).abs()
    assert region is not None
    diff = (other - orig).abs() * region
    return diff.flatten(2).sum(2) / region.flatten(2).sum(2)


def _votes(ds: torch.Tensor, dp: torch.Tensor, rule: str, criterion: str
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Vote frequency (C,) and tie-break margin (C,) from per-pair changes (P×C)."""
    sub_hi = ds > ds.median(dim=1, keepdim=True).values
    pres_lo = dp < dp.median(dim=1, keepdim=True).values
    if criterion == "substitution":
        return sub_hi.float().mean(0), ds.mean(0)
    if criterion == "preservation":
        return pres_lo.float().mean(0), -dp.mean(0)
    if rule == "literal":
        return (sub_hi & pres_lo).float().mean(0), ds.mean(0) - dp.mean(0)
    # normalized, both directions: the share of the neuron's change that the attribute
    # explains, d_sub / (d_sub + d_pres) (scale-free), above the layer's median
    share = ds / (ds + dp + 1e-12)
    return (share > share.median(dim=1, keepdim=True).values).float().mean(0), share.mean(0)


def _select(votes: torch.Tensor, margin: torch.Tensor, min_vote: float, top_k: int | None
            ) -> tuple[int, ...]:
    ok = torch.nonzero(votes >= min_vote - 1e-9).flatten()
    if ok.numel() == 0:
        return ()
    key = votes[ok] * 1e3 + margin[ok] / (margin.abs().max() + 1e-12)  # votes first, then margin
    order = ok[torch.argsort(key, descending=True)]
    if top_k is not None:
        order = order[:top_k]
    return tuple(int(c) for c in order)


def extract_witnesses(
    model: nn.Module, x: torch.Tensor, attrs: AttributeSet, layers: list[str] | tuple[str, ...],
    *, n_pairs: int = 100, groups: torch.Tensor | None = None, rule: str = "normalized",
    criterion: str = "both", top_k: int | None = 10, min_vote: float | None = None,
    region_pad: int = 1, feather: float = 2.0, batch_size: int = 32, seed: int = 0,
    progress: bool = True,
) -> WitnessSet:
    """Find the witness neurons of every attribute at every layer (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (not modified; hooks are removed afterwards).
    x : torch.Tensor
        N×C×H×W benign images in [0, 1].
    attrs : AttributeSet
        Their attribute boxes or masks.
    layers : sequence of str
        Dotted layer names to analyse.
    n_pairs : int
        (recipient, donor) pairs per attribute.
    groups : torch.Tensor, optional
        Group (person) of each image; donors come from another group.
    rule : {"normalized", "literal"}
        How neuron changes are measured (module docstring).
    criterion : {"both", "substitution", "preservation"}
        Which direction(s) of the reasoning vote; one-sided ones are ablations.
    top_k : int or None
        Most witnesses per layer and attribute (None = no cap).
    min_vote : float, optional
        Vote frequency a witness needs; default 0.75 (normalized) or 1.0 (literal).
    region_pad : int
        Feature-map cells added around the attribute's region (normalized rule).
    feather : float
        Blended border of the substitutions / preservations, in pixels.
    batch_size, seed, progress
        Pairs per forward pass; pairing seed; progress bar.

    Returns
    -------
    WitnessSet
    """
    return extract_witness_variants(
        model, x, attrs, layers, [(rule, criterion, min_vote)], n_pairs=n_pairs, groups=groups,
        top_k=top_k, region_pad=region_pad, feather=feather, batch_size=batch_size, seed=seed,
        progress=progress)[0]


def extract_witness_variants(
    model: nn.Module, x: torch.Tensor, attrs: AttributeSet, layers: list[str] | tuple[str, ...],
    variants: list[tuple[str, str, float | None]], *, n_pairs: int = 100,
    groups: torch.Tensor | None = None, top_k: int | None = 10, region_pad: int = 1,
    feather: float = 2.0, batch_size: int = 32, seed: int = 0, progress: bool = True,
) -> list[WitnessSet]:
    """Several witness sets from one pass over the same pairs.

    ``variants`` lists ``(rule, criterion, min_vote)`` triples (``min_vote`` None = the rule's
    default); the other parameters are those of :func:`extract_witnesses`. Used for the
    ablations, which must see the same substitutions and preservations.
    """
    checked = []
    for rule, criterion, min_vote in variants:
        if rule not in RULES:
            raise InputError(f"rule must be one of {RULES}, got {rule!r}")
        if criterion not in CRITERIA:
            raise InputError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if min_vote is None:
            min_vote = 1.0 if rule == "literal" else 0.75
        check_number("min_vote", min_vote, low=0.0, high=1.0)
        checked.append((rule, criterion, float(min_vote)))
    if not checked:
        raise InputError("no witness variants requested")
    if top_k is not None:
        check_int("top_k", top_k, low=1)
    check_int("n_pairs", n_pairs, low=1)
    if not layers:
        raise InputError("extract_witnesses needs at least one layer")
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise InputError("x must be a batch of images N×C×H×W")
    attrs.check(x)
    layers = list(layers)
    for layer in layers:
        hooks.resolve(model, layer)
    with inference(model):
        return _extract(model, x, attrs, layers, checked, n_pairs=n_pairs, groups=groups,
                        top_k=top_k, region_pad=region_pad, feather=feather,
                        batch_size=batch_size, seed=seed, progress=progress)


def _neuron_scale(model: nn.Module, x: torch.Tensor, layers: list[str], batch_size: int
                  ) -> dict[str, torch.Tensor]:
    """Standard deviation of every neuron's activation over the images (all locations)."""
    device = model_device(model)  # the caller runs this inside execution.inference
    sums: dict[str, torch.Tensor] = {}
    sq: dict[str, torch.Tensor] = {}
    counts: dict[str, float] = {}
    with hooks.capture(model, layers) as acts:
        for sl in batch_slices(x.shape[0], batch_size):
            model(x[sl].to(device))
            for layer in layers:
                a = acts[layer].double()
                a = a.transpose(0, 1).reshape(a.shape[1], -1)
                sums[layer] = sums.get(layer, 0) + a.sum(1)
                sq[layer] = sq.get(layer, 0) + (a * a).sum(1)
                counts[layer] = counts.get(layer, 0) + a.shape[1]
    return {layer: ((sq[layer] / counts[layer] - (sums[layer] / counts[layer]) ** 2)
                    .clamp_min(0).sqrt() + 1e-6).float().cpu() for layer in layers}


def _extract(model: nn.Module, x: torch.Tensor, attrs: AttributeSet, layers: list[str],
             variants: list[tuple[str, str, float]], *, n_pairs: int,
             groups: torch.Tensor | None, top_k: int | None, region_pad: int, feather: float,
             batch_size: int, seed: int, progress: bool) -> list[WitnessSet]:
    device = model_device(model)
    h_img, w_img = x.shape[2:]
    rules = sorted({v[0] for v in variants})
    scale = _neuron_scale(model, x, layers, batch_size)
    num_neurons = {layer: int(scale[layer].numel()) for layer in layers}
    channels = [{layer: {} for layer in layers} for _ in variants]
    votes_out = [{layer: torch.zeros(attrs.num_attributes, num_neurons[layer])
                  for layer in layers} for _ in variants]
    bar = tqdm(total=attrs.num_attributes * n_pairs, desc="witnesses", disable=not progress,
               leave=False)
    try:
        for a, name in enumerate(attrs.names):
            rec, don = pair_up(x.shape[0], n_pairs, groups=groups, seed=seed + 1000 * a)
            d_sub = {(rule, layer): [] for rule in rules for layer in layers}
            d_pres = {(rule, layer): [] for rule in rules for layer in layers}
            for sl in batch_slices(n_pairs, batch_size):
                r, d = rec[sl], don[sl]
                xs = torch.cat([x[r.to(x.device)],
                                substitute(x, attrs, a, r, d, feather=feather),
                                preserve(x, attrs, a, r, d, feather=feather)]).to(device)
                # both edits are compared with the recipient on the recipient's region
                mask = attrs.region(r, a, (h_img, w_img), dtype=xs.dtype, device=device)
                with hooks.capture(model, layers) as acts:
                    model(xs)
                for layer in layers:
                    o, s_, p = acts[layer].float().chunk(3)
                    region = (_region_map(mask, tuple(o.shape[2:]), region_pad)
                              if o.ndim == 4 else None)
                    for rule in rules:
                        d_sub[(rule, layer)].append(_changes(o, s_, region, rule).cpu())
                        d_pres[(rule, layer)].append(_changes(o, p, region, rule).cpu())
                bar.update(len(r))
            for layer in layers:
                for j, (rule, criterion, min_vote) in enumerate(variants):
                    ds, dp = torch.cat(d_sub[(rule, layer)]), torch.cat(d_pres[(rule, layer)])
                    if rule == "normalized":
                        ds, dp = ds / scale[layer], dp / scale[layer]
                    v, margin = _votes(ds, dp, rule, criterion)
                    votes_out[j][layer][a] = v
                    channels[j][layer][name] = _select(v, margin, min_vote, top_k)
    finally:
        bar.close()
    order = {n: i for i, n in enumerate(hooks.layer_names(model))}
    ordered = tuple(sorted(layers, key=lambda n: order[n]))
    out = []
    for j, (rule, criterion, min_vote) in enumerate(variants):
        params = {"rule": rule, "criterion": criterion, "top_k": top_k, "min_vote": min_vote,
                  "n_pairs": n_pairs, "region_pad": region_pad, "feather": feather,
                  "seed": seed}
        out.append(WitnessSet(ordered, tuple(attrs.names),
                              {k: channels[j][k] for k in ordered},
                              {k: num_neurons[k] for k in ordered}, votes_out[j], params))
    return out
