"""Reproducible model bugs from *biased training inputs* (the MODE paper's root cause).

Each function returns a modified copy of a training :class:`~deepscope.data.Dataset` and a
:class:`InjectedBug` that records exactly what was done (``BugRecipe`` is its old name, kept as
an alias; a *diagnosed* bug is :class:`deepscope.debug.Bug`). A model trained on the copy shows
the bug on the chosen label:

``underfit(train, L, keep=0.1, mislabel=0.0)``
    *Starve* label ``L``: keep a seeded random ``keep`` share of its samples (``round(keep · n_L)``;
    the other labels are untouched), then give a seeded random ``mislabel`` share of the kept
    samples (``round(mislabel · n_kept)``) a wrong label drawn uniformly from the other labels.
    Both train and test accuracy of ``L`` drop: an under-fitting bug.

``overfit(train, L, keep=0.1, narrow="prototype")``
    Keep only a *narrow* part of label ``L``: the ``round(keep · n_L)`` samples of ``L`` nearest
    (Euclidean distance in pixel space, ties by index) to one point:

    * ``narrow="prototype"``: seeded k-means (k-means++ initialisation, at most 50 Lloyd
      iterations) with ``k = clip(round(1 / keep), 2, 50)`` clusters on the pixels of ``L``; the
      point is the centre of the largest cluster (lowest cluster index on ties);
    * ``narrow="anchor"``: the point is one seeded random sample of ``L``.

    The model fits these look-alike samples (high training accuracy on ``L``) but misses the
    rest of ``L``'s variety (lower test accuracy): an over-fitting bug.

The sample order of the dataset is preserved; ``info["bug"]`` of the result holds the record.
k-means lives in :mod:`deepscope.models.cluster` (``bugs.kmeans`` stays importable).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from deepscope._jsonable import to_jsonable
from deepscope._validate import check_choice, check_int, check_number
from deepscope.errors import InputError
from deepscope.models.cluster import kmeans
from deepscope.registry import Registry

__all__ = ["BugRecipe", "InjectedBug", "get", "kmeans", "names", "overfit", "underfit"]

BUGS: Registry[Callable[..., Any]] = Registry("bug")
NARROW_MODES = ("prototype", "anchor")


@dataclass(frozen=True)
class InjectedBug:
    """What a bug injection did (the record of an *injected* bug; ``BugRecipe`` is an alias).

    Attributes
    ----------
    kind : str
        ``"underfit"`` or ``"overfit"``.
    label : int
        The label made buggy.
    description : str
        One human-readable sentence.
    params : mapping
        Arguments and resulting counts (plain types).
    """

    kind: str
    label: int
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return to_jsonable({"kind": self.kind, "label": self.label,
                            "description": self.description, "params": dict(self.params)})


BugRecipe = InjectedBug  # the old name


def names() -> list[str]:
    """Registered bug kinds: ``["underfit", "overfit"]``."""
    return BUGS.names()


def get(name: str) -> Callable[..., Any]:
    """The bug-injection function registered as ``name``."""
    return BUGS.get(name)


# ----------------------------------------------------------------------------------------------
# helpers


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def _check(train: Any, label: Any, keep: Any, seed: Any) -> torch.Tensor:
    if not (hasattr(train, "x") and hasattr(train, "y") and hasattr(train, "subset")):
        raise InputError(f"train must be a deepscope.data.Dataset, got {type(train).__name__}")
    k = int(train.num_classes)
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < k:
        raise InputError(f"label must be an int in [0, {k}), got {label!r}")
    check_number("keep", keep, low=0.0, high=1.0)
    check_int("seed", seed)
    idx = torch.nonzero(train.y.cpu() == label).flatten()
    if len(idx) == 0:
        raise InputError(f"label {label} has no samples in the training set")
    return idx


def _record(kind: str, label: int, description: str, train: Any, index: torch.Tensor,
            idx: torch.Tensor, n_keep: int, args: dict[str, Any], extra: dict[str, Any]
            ) -> InjectedBug:
    """The :class:`InjectedBug`: the arguments, the counts every injection reports, extras."""
    return InjectedBug(kind=kind, label=label, description=description, params={
        **args, "n_before": len(train.y), "n_after": len(index),
        "n_label_before": len(idx), "n_label_kept": n_keep, **extra})


def _result(train: Any, index: torch.Tensor, y: torch.Tensor | None, recipe: InjectedBug) -> Any:
    ds = train.subset(index)
    info = {**dict(getattr(ds, "info", {}) or {}), "bug": recipe.to_dict()}
    changes: dict[str, Any] = {"info": info}
    if y is not None:
        changes["y"] = y.to(ds.y.device)
    return dataclasses.replace(ds, **changes)


# ----------------------------------------------------------------------------------------------
# bugs


@BUGS.register("underfit")
def underfit(
    train: Any, label: int, *, keep: float = 0.1, mislabel: float = 0.0, seed: int = 0
) -> tuple[Any, InjectedBug]:
    """Starve ``label``: keep a ``keep`` share of its samples, optionally mislabel some.

    Parameters
    ----------
    train : Dataset
        Training set.
    label : int
        Label to make buggy.
    keep : float
        Share of the label's samples kept (seeded random choice).
    mislabel : float
        Share of the *kept* samples whose label is changed to a random other label.
    seed : int
        Seed of both random choices.

    Returns
    -------
    (Dataset, InjectedBug)
    """
    idx = _check(train, label, keep, seed)
    check_number("mislabel", mislabel, low=0.0, high=1.0)
    k = int(train.num_classes)
    g = torch.Generator().manual_seed(seed)
    n_keep = _round(keep * len(idx))
    kept = idx[torch.randperm(len(idx), generator=g)[:n_keep]]
    n_mis = _round(mislabel * n_keep)
    flipped = kept[torch.randperm(n_keep, generator=g)[:n_mis]]
    new_labels = (label + torch.randint(1, k, (n_mis,), generator=g)) % k

    y_cpu = train.y.cpu()
    others = torch.nonzero(y_cpu != label).flatten()
    index = torch.sort(torch.cat([others, kept])).values
    y_new = None
    if n_mis:
        full = y_cpu.clone()
        full[flipped] = new_labels
        y_new = full[index]
    description = (f"under-fitting on label {label}: kept {n_keep} of its {len(idx)} training "
                   "samples" + (f", {n_mis} of them relabelled to other labels" if n_mis else ""))
    recipe = _record("underfit", label, description, train, index, idx, n_keep,
                     {"keep": float(keep), "mislabel": float(mislabel), "seed": seed},
                     {"n_mislabelled": n_mis})
    return _result(train, index, y_new, recipe), recipe


@BUGS.register("overfit")
def overfit(
    train: Any, label: int, *, keep: float = 0.1, narrow: str = "prototype", seed: int = 0
) -> tuple[Any, InjectedBug]:
    """Keep only the ``keep`` share of ``label``'s samples nearest one prototype.

    ``train``, ``label``, ``keep`` (here: at least one sample is kept) and ``seed`` (of k-means /
    the anchor choice) as in :func:`underfit`; ``narrow`` (``"prototype"`` or ``"anchor"``)
    chooses the point: the centre of the largest k-means cluster, or a random sample of the
    label (see the module docstring). Returns ``(Dataset, InjectedBug)``.
    """
    idx = _check(train, label, keep, seed)
    check_choice("narrow", narrow, NARROW_MODES)
    n_keep = max(1, _round(keep * len(idx)))
    feats = train.x[idx.to(train.x.device)].flatten(1).to(torch.float32).cpu()
    g = torch.Generator().manual_seed(seed)
    if narrow == "prototype":
        clusters = int(min(max(_round(1.0 / max(keep, 1e-12)), 2), 50, len(idx)))
        centres, assign = kmeans(feats, clusters, generator=g)
        sizes = torch.bincount(assign, minlength=clusters)
        chosen = int(torch.argmax(sizes))  # first maximum on ties
        point = centres[chosen]
        detail = f"k-means with k={clusters}, largest cluster ({int(sizes[chosen])} samples)"
        extra: dict[str, Any] = {"clusters": clusters, "cluster_size": int(sizes[chosen])}
    else:
        anchor = int(torch.randint(len(idx), (1,), generator=g))
        point = feats[anchor]
        detail = f"random anchor sample #{int(idx[anchor])}"
        extra = {"anchor_index": int(idx[anchor])}
    dist = torch.linalg.vector_norm(feats - point, dim=1)
    order = torch.sort(dist, stable=True).indices
    kept = idx[order[:n_keep]]
    others = torch.nonzero(train.y.cpu() != label).flatten()
    index = torch.sort(torch.cat([others, kept])).values
    description = (f"over-fitting on label {label}: kept only the {n_keep} of its {len(idx)} "
                   f"training samples nearest one prototype ({detail})")
    recipe = _record("overfit", label, description, train, index, idx, n_keep,
                     {"keep": float(keep), "narrow": narrow, "seed": seed}, extra)
    return _result(train, index, None, recipe), recipe
