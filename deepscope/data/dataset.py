"""The :class:`Dataset` container (images, tabular rows, sequences) and :func:`from_arrays`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deepscope.errors import InputError


def _check_sequences(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 2:
        raise InputError(
            f"int64 x holds token or byte sequences and must be 2-D (N, T), got shape "
            f"{tuple(x.shape)}"
        )
    if x.numel() and int(x.min()) < 0:
        raise InputError(
            f"sequence ids must be >= 0 (0 = padding), found {int(x.min())}; bytes are stored as "
            "value + 1"
        )
    return x


def _check_rows(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] < 1:
        raise InputError(f"tabular rows need at least one feature column, got shape "
                         f"{tuple(x.shape)}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise InputError("x contains NaN or infinite values; impute or drop those rows")
    return x


def _check_x(x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"x must be a torch.Tensor, got {type(x).__name__}; use deepscope.data.from_arrays "
            "to build a Dataset from numpy arrays"
        )
    if x.dtype == torch.int64:
        return _check_sequences(x)
    if x.ndim == 2 and x.dtype == torch.float32:
        return _check_rows(x)
    if x.ndim != 4:
        raise InputError(
            f"x must be 4-D (N, C, H, W) float32 images, 2-D (N, D) float32 tabular rows or 2-D "
            f"(N, T) int64 sequences, got shape {tuple(x.shape)}; from_arrays converts N×H×W "
            "and channels-last images"
        )
    if x.dtype != torch.float32:
        raise InputError(f"x must be float32 with values in [0, 1], got dtype {x.dtype}")
    if x.numel():
        if not bool(torch.isfinite(x).all()):
            raise InputError("x contains NaN or infinite values; clean or drop those samples")
        lo, hi = torch.aminmax(x)
        if lo.item() < 0.0 or hi.item() > 1.0:
            raise InputError(
                f"x values must lie in [0, 1], found min {lo.item():.4g} and max {hi.item():.4g}; "
                "scale the pixels (e.g. uint8 / 255) and keep normalisation in the model"
            )
    return x


def _check_y(y: object, x: torch.Tensor, k: int) -> torch.Tensor:
    n, device = x.shape[0], x.device
    if not isinstance(y, torch.Tensor):
        raise InputError(f"y must be a torch.Tensor of int64 labels, got {type(y).__name__}")
    per_position = x.dtype == torch.int64 and y.ndim == 2
    if y.dtype != torch.int64 or not (y.ndim == 1 or per_position):
        raise InputError(
            f"y must be a 1-D int64 tensor (or N×T per-position labels of a sequence dataset), "
            f"got shape {tuple(y.shape)} and dtype {y.dtype}"
        )
    if per_position and y.shape != x.shape:
        raise InputError(
            f"per-position labels y must have the shape of x {tuple(x.shape)}, got "
            f"{tuple(y.shape)}"
        )
    if len(y) != n:
        raise InputError(f"x has {n} samples but y has {len(y)} labels; they must match")
    if y.device != device:
        raise InputError(f"y is on {y.device} but x is on {device}; put both on one device")
    if n:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= k:
            raise InputError(
                f"labels must lie in [0, {k}) for {k} classes, found min {lo} and max {hi}; "
                "pass the full list of class names"
            )
    return y


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A dataset held in memory as tensors: images, tabular rows, or token / byte sequences.

    Three modalities share this container (:attr:`modality`):

    - ``"image"``: ``x`` float32 N×C×H×W in [0, 1], ``y`` int64 N.
    - ``"tabular"``: ``x`` float32 N×D feature rows (any finite values: scaling belongs to the
      model), ``y`` int64 N.
    - ``"sequence"``: ``x`` int64 N×T of ids >= 0, with 0 = padding / nullified (text: token ids,
      1 = unknown word; bytes: value + 1). ``y`` is int64 N (one label per sequence, e.g.
      sentiment) or int64 N×T (one label per position, e.g. 1 = a function starts at this
      byte; padding positions carry label 0 and are left out of :meth:`class_counts`).

    Parameters
    ----------
    x : torch.Tensor
        float32 images N×C×H×W (values in [0, 1], finite), float32 rows N×D (finite) or int64
        sequences N×T.
    y : torch.Tensor
        int64 labels in ``[0, len(classes))``, shape N (or N×T for sequences), on ``x``'s device.
    classes : tuple of str
        Class names; the index is the label id.
    name : str
        Dataset name (e.g. ``"mnist"``).
    split : str
        Which part (e.g. ``"train"``, ``"test"``, ``"pool"``).
    extras : mapping of str to torch.Tensor
        Per-sample arrays whose first dimension is N; :meth:`subset` slices them alongside.
    info : mapping
        Dataset-level metadata (e.g. ``box_names``, ``max_length``).
    groups : sequence of str, optional
        Per-sample group name (e.g. the source archive of a byte window); kept as a numpy str
        array, sliced alongside.
    texts : sequence of str, optional
        Per-sample raw text (text datasets), kept as a list, sliced alongside.
    vocab : object, optional
        The vocabulary that produced the token ids (:class:`deepscope.data.text.Vocabulary`).

    Raises
    ------
    InputError
        When any of the above does not hold; the message says what is wrong.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    name: str = "custom"
    split: str = "custom"
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    groups: Any = None
    texts: Any = None
    vocab: Any = None

    def __post_init__(self) -> None:
        x = _check_x(self.x)
        if isinstance(self.classes, str) or not isinstance(self.classes, Sequence):
            raise InputError(f"classes must be a sequence of names, got {self.classes!r}")
        classes = tuple(self.classes)
        if not classes or not all(isinstance(c, str) for c in classes):
            raise InputError(f"classes must be a non-empty sequence of str, got {classes!r}")
        if len(set(classes)) != len(classes):
            raise InputError(f"class names must be unique, got {classes!r}")
        _check_y(self.y, x, len(classes))
        self._set_sequence_fields(x)
        for label, value in (("name", self.name), ("split", self.split)):
            if not isinstance(value, str):
                raise InputError(f"{label} must be a str, got {value!r}")
        if not isinstance(self.extras, Mapping) or not isinstance(self.info, Mapping):
            raise InputError("extras and info must be mappings")
        for key, value in self.extras.items():
            if not isinstance(value, torch.Tensor) or value.ndim < 1:
                raise InputError(f"extras[{key!r}] must be a tensor with a first dimension N")
            if value.shape[0] != x.shape[0]:
                raise InputError(
                    f"extras[{key!r}] has first dimension {value.shape[0]}, expected N = "
                    f"{x.shape[0]} (one entry per sample)"
                )
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "extras", dict(self.extras))
        object.__setattr__(self, "info", dict(self.info))

    def _set_sequence_fields(self, x: torch.Tensor) -> None:
        n = int(x.shape[0])
        for label in ("groups", "texts"):
            value = getattr(self, label)
            if value is None:
                continue
            if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)):
                raise InputError(f"{label} must be a sequence of str, one per sample")
            if len(value) != n:
                raise InputError(f"{label} has {len(value)} entries, expected N = {n}")
            if label == "groups":
                value = np.asarray(value, dtype=str) if n else np.array([], dtype=str)
            else:
                value = [str(v) for v in value]
            object.__setattr__(self, label, value)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape={self.input_shape}, classes={self.num_classes}, device={self.x.device})"
        )

    @property
    def modality(self) -> str:
        """``"image"`` (float32 N×C×H×W), ``"tabular"`` (float32 N×D) or ``"sequence"``
        (int64 N×T)."""
        if self.x.dtype == torch.int64:
            return "sequence"
        return "tabular" if self.x.ndim == 2 else "image"

    @property
    def per_position(self) -> bool:
        """True when ``y`` holds one label per position (N×T), as for byte taggers."""
        return self.y.ndim == 2

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` for images, ``(D,)`` for rows, ``(T,)`` for
        sequences."""
        return tuple(int(v) for v in self.x.shape[1:])

    def _index(self, index: object) -> slice | torch.Tensor:
        n = len(self)
        if isinstance(index, slice):
            return index
        if isinstance(index, (bool, int, np.integer)):
            raise InputError(f"subset needs a slice, mask or array of indices, got {index!r}; "
                             "use [i] for a single sample")
        if isinstance(index, torch.Tensor):
            t = index.detach()
        else:
            arr = np.asarray(index)
            if arr.size == 0:
                arr = arr.astype(np.int64)
            t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.ndim != 1:
            raise InputError(f"subset index must be 1-D, got shape {tuple(t.shape)}")
        if t.dtype == torch.bool:
            if len(t) != n:
                raise InputError(f"boolean mask has length {len(t)}, the dataset has {n} samples")
            return t.to(self.x.device).nonzero().squeeze(1)
        if t.dtype.is_floating_point or t.dtype.is_complex:
            raise InputError(f"subset indices must be integers or booleans, got {t.dtype}")
        t = t.to(device=self.x.device, dtype=torch.int64)
        if t.numel() and (int(t.min()) < -n or int(t.max()) >= n):
            raise InputError(
                f"subset indices must lie in [-{n}, {n}), got min {int(t.min())} and max "
                f"{int(t.max())}"
            )
        return t

    def subset(self, index: object, split: str | None = None) -> Dataset:
        """Return the samples selected by ``index`` (a copy; extras, groups, texts alongside).

        Parameters
        ----------
        index : slice, bool mask, or int array / tensor / sequence
            Which samples to keep (in the given order).
        split : str or None
            Split name of the result; default keeps this dataset's.
        """
        idx = self._index(index)

        def take(t: torch.Tensor) -> torch.Tensor:
            if isinstance(idx, slice):
                return t[idx].clone()
            return t[idx.to(t.device)]

        rows = idx if isinstance(idx, slice) else idx.cpu().numpy()
        texts = None
        if self.texts is not None:
            texts = self.texts[rows] if isinstance(rows, slice) else [self.texts[i] for i in rows]
        return Dataset(
            x=take(self.x),
            y=take(self.y),
            classes=self.classes,
            name=self.name,
            split=self.split if split is None else split,
            extras={k: take(v) for k, v in self.extras.items()},
            info=self.info,
            groups=None if self.groups is None else self.groups[rows],
            texts=texts,
            vocab=self.vocab,
        )

    def to(self, device: torch.device | str) -> Dataset:
        """Return this dataset with every tensor (extras included) moved to ``device``."""
        return Dataset(
            x=self.x.to(device),
            y=self.y.to(device),
            classes=self.classes,
            name=self.name,
            split=self.split,
            extras={k: v.to(device) for k, v in self.extras.items()},
            info=self.info,
            groups=self.groups,
            texts=self.texts,
            vocab=self.vocab,
        )

    def class_counts(self) -> np.ndarray:
        """Number of samples per class, int64 array of length K.

        With per-position labels (N×T) this counts positions instead, padding (``x == 0``) left
        out: for function starts, ``[non-start bytes, start bytes]``.
        """
        y = self.y
        if self.per_position:
            y = y[self.x != 0]
        return np.bincount(y.cpu().numpy().ravel(), minlength=self.num_classes).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (not the arrays)."""
        out = {
            "name": self.name,
            "split": self.split,
            "modality": self.modality,
            "n": len(self),
            "shape": list(self.input_shape),
            "classes": list(self.classes),
            "counts": [int(c) for c in self.class_counts()],
            "extras": sorted(self.extras),
            "info": {k: _plain(v) for k, v in self.info.items()},
        }
        if self.per_position:
            out["counts_per"] = "position"
        if self.groups is not None:
            names, counts = np.unique(self.groups, return_counts=True)
            out["groups"] = {str(g): int(c) for g, c in zip(names, counts, strict=True)}
        if self.vocab is not None:
            out["vocab_size"] = len(self.vocab)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def _as_tensor(a: object, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach()
    if isinstance(a, np.ndarray) or isinstance(a, (list, tuple)):
        arr = np.array(a)  # a copy: the Dataset never aliases the caller's numpy memory
        if arr.dtype == object:
            raise InputError(f"{what} must be a numeric array, got an object array")
        return torch.from_numpy(arr)
    raise InputError(f"{what} must be a numpy array or torch tensor, got {type(a).__name__}")


def _images(x: object) -> torch.Tensor:
    t = _as_tensor(x, "x")
    if t.dtype == torch.uint8:
        t = t.to(torch.float32) / 255.0
    elif t.dtype == torch.bool or t.dtype.is_floating_point:
        t = t.to(torch.float32)
    else:
        raise InputError(
            f"images of dtype {t.dtype} are ambiguous; pass uint8 (0-255) or floats in [0, 1]"
        )
    shape = tuple(t.shape)
    if t.ndim == 3:
        return t.unsqueeze(1).contiguous()
    if t.ndim == 4:
        if shape[1] in (1, 3):  # N×C×H×W (channels-first wins when both readings fit)
            return t.contiguous()
        if shape[3] in (1, 3):
            return t.permute(0, 3, 1, 2).contiguous()
    raise InputError(
        f"cannot read images of shape {shape}: expected N×H×W, N×C×H×W or N×H×W×C with "
        "C in {1, 3}"
    )


def from_arrays(
    x: object,
    y: object,
    classes: Sequence[str] | None = None,
    name: str = "custom",
    split: str = "custom",
) -> Dataset:
    """Build a :class:`Dataset` from numpy arrays or torch tensors.

    Parameters
    ----------
    x : array-like
        Images: N×H×W, N×C×H×W or channels-last N×H×W×C (C in {1, 3}). uint8 values are scaled
        by 1/255; floats must already be in [0, 1].
    y : array-like
        Integer labels, shape N (or N×1).
    classes : sequence of str, optional
        Class names; default ``"0" .. str(max(y))``.
    name, split : str
        Dataset and split names.

    Returns
    -------
    Dataset
        On the device of ``x`` when it is a tensor, else on the CPU.
    """
    images = _images(x)
    labels = _as_tensor(y, "y")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise InputError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.to(device=images.device, dtype=torch.int64)
    if classes is None:
        if labels.ndim != 1 or labels.numel() == 0:
            raise InputError("cannot infer classes from empty or non 1-D labels; pass classes=")
        classes = tuple(str(i) for i in range(int(labels.max()) + 1))
    elif isinstance(classes, str):
        raise InputError(f"classes must be a sequence of names, got the string {classes!r}")
    return Dataset(images, labels, tuple(str(c) for c in classes), name=name, split=split)
