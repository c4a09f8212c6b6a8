"""Reproducible model bugs from *biased training inputs* (the MODE paper's root cause).

Each function returns a modified copy of a training :class:`~deepscope.data.Dataset` and a
:class:`BugRecipe` that records exactly what was done. A model trained on the copy shows the bug
on the chosen label:

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

The sample order of the dataset is preserved; ``info["bug"]`` of the result holds the recipe.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from deepscope.errors import InputError
from deepscope.registry import Registry

__all__ = ["BugRecipe", "get", "names", "overfit", "underfit"]

BUGS: Registry[Callable[..., Any]] = Registry("bug")
NARROW_MODES = ("prototype", "anchor")


@dataclass(frozen=True)
class BugRecipe:
    """What a bug injection did.

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
        return {
            "kind": self.kind,
            "label": self.label,
            "description": self.description,
            "params": dict(self.params),
        }


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
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < k:
        raise InputError(f"label must be an int in [0, {k}), got {label!r}")
    if not isinstance(keep, (int, float)) or not 0.0 <= keep <= 1.0:
        raise InputError(f"keep must be a share in [0, 1], got {keep!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"seed must be an int, got {seed!r}")
    idx = torch.nonzero(train.y.cpu() == label).flatten()
    if len(idx) == 0:
        raise InputError(f"label {label} has no samples in the training set")
    return idx


def _result(train: Any, index: torch.Tensor, y: torch.Tensor | None, recipe: BugRecipe) -> Any:
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
) -> tuple[Any, BugRecipe]:
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
    (Dataset, BugRecipe)
    """
    idx = _check(train, label, keep, seed)
    if not isinstance(mislabel, (int, float)) or not 0.0 <= mislabel <= 1.0:
        raise InputError(f"mislabel must be a share in [0, 1], got {mislabel!r}")
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
    recipe = BugRecipe(
        kind="underfit",
        label=label,
        description=(
            f"under-fitting on label {label}: kept {n_keep} of its {len(idx)} training samples"
            + (f", {n_mis} of them relabelled to other labels" if n_mis else "")
        ),
        params={
            "keep": float(keep),
            "mislabel": float(mislabel),
            "seed": seed,
            "n_before": len(train.y),
            "n_after": len(index),
            "n_label_before": len(idx),
            "n_label_kept": n_keep,
            "n_mislabelled": n_mis,
        },
    )
    return _result(train, index, y_new, recipe), recipe


@BUGS.register("overfit")
def overfit(
    train: Any, label: int, *, keep: float = 0.1, narrow: str = "prototype", seed: int = 0
) -> tuple[Any, BugRecipe]:
    """Keep only the ``keep`` share of ``label``'s samples nearest one prototype.

    Parameters
    ----------
    train : Dataset
        Training set.
    label : int
        Label to make buggy.
    keep : float
        Share of the label's samples kept (at least one sample).
    narrow : {"prototype", "anchor"}
        How the point is chosen: centre of the largest k-means cluster, or a random sample
        (see the module docstring).
    seed : int
        Seed of k-means / the anchor choice.

    Returns
    -------
    (Dataset, BugRecipe)
    """
    idx = _check(train, label, keep, seed)
    if narrow not in NARROW_MODES:
        raise InputError(f"narrow must be one of {NARROW_MODES}, got {narrow!r}")
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
    recipe = BugRecipe(
        kind="overfit",
        label=label,
        description=(
            f"over-fitting on label {label}: kept only the {n_keep} of its {len(idx)} training "
            f"samples nearest one prototype ({detail})"
        ),
        params={
            "keep": float(keep),
            "narrow": narrow,
            "seed": seed,
            "n_before": len(train.y),
            "n_after": len(index),
            "n_label_before": len(idx),
            "n_label_kept": n_keep,
            **extra,
        },
    )
    return _result(train, index, None, recipe), recipe


def kmeans(
    points: torch.Tensor, k: int, *, generator: torch.Generator, iterations: int = 50
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded k-means (k-means++ initialisation, Lloyd iterations) on the rows of ``points``.

    Returns
    -------
    (centres, assignment) : (k×D tensor, N int64 tensor)
    """
    n = len(points)
    if not 1 <= k <= n:
        raise InputError(f"k-means needs 1 <= k <= {n} clusters, got {k}")
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [points[first]]
    d2 = torch.cdist(points, points[first : first + 1]).squeeze(1) ** 2
    for _ in range(1, k):
        if float(d2.sum()) > 0:
            nxt = int(torch.multinomial(d2 / d2.sum(), 1, generator=generator))
        else:
            nxt = int(torch.randint(n, (1,), generator=generator))
        centres.append(points[nxt])
        d2 = torch.minimum(d2, torch.cdist(points, points[nxt : nxt + 1]).squeeze(1) ** 2)
    c = torch.stack(centres)
    assign = torch.cdist(points, c).argmin(1)
    for _ in range(iterations):
        sums = torch.zeros_like(c).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        nonempty = counts > 0
        c = torch.where(nonempty[:, None], sums / counts.clamp(min=1)[:, None], c)
        new_assign = torch.cdist(points, c).argmin(1)
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
    return c, assign
