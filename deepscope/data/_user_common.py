"""Shared pieces of the user-data readers: errors, options, labels, image conforming.

Image rules (the same for image folders and ``.npz`` files; every conversion made is listed in
``Dataset.info["conversions"]``):

- **Channels**: images keep their own channels (1 = grayscale, 3 = colour). They are converted
  only when asked: ``grayscale=True`` makes one channel with the ITU-R 601-2 luma weights
  ``0.299 R + 0.587 G + 0.114 B``; ``grayscale=False`` makes three by repeating a gray
  channel. Without it, a channel count other than ``input_shape``'s, or a mix of gray and colour
  images, is an error that says to pass ``grayscale=``.
- **Size**: images keep their size. With ``resize=True`` every image is resized to ``input_shape``'s
  ``(H, W)`` when given, else to the most common size among the images (ties: the size of the
  first image in file order), with ``torch.nn.functional.interpolate(mode="bilinear",
  antialias=True, align_corners=False)``; the aspect ratio is not kept. Without it, mixed sizes
  or a size other than ``input_shape``'s are an error that says to pass ``resize=True``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepscope.data.dataset import Dataset
from deepscope.data.splits import stratified_subset
from deepscope.errors import DataError, InputError

LUMA = (0.299, 0.587, 0.114)
RESIZE_RULE = ("bilinear (torch interpolate, antialias=True, align_corners=False) to {size}; "
               "aspect ratio not kept")


class UserDataError(DataError, ValueError):
    """The user's data is malformed: the message says what is wrong and what to pass."""


class UnsupportedFormatError(UserDataError):
    """The path is not a format deepscope reads (image folder, .npz, .csv, .tsv)."""


class LabelError(UserDataError):
    """Labels are missing, negative, out of range, not integers, or of one class only."""


class ImageShapeError(UserDataError):
    """Images of mixed or unexpected sizes or channels (pass resize= / grayscale=)."""


@dataclass(frozen=True)
class Options:
    """The reading options of :func:`deepscope.data.user.load_data`, validated."""

    input_shape: tuple[int, ...] | None
    resize: bool
    grayscale: bool | None
    label_column: str
    vocabulary: Any
    classes: tuple[str, ...] | None
    max_samples: int | None
    seed: int


def check_options(input_shape: Any, resize: Any, grayscale: Any, label_column: Any,
                  vocabulary: Any, classes: Any, max_samples: Any, seed: Any) -> Options:
    """Validate the keyword arguments of ``load_data`` (InputError naming the bad one)."""
    shape = None
    if input_shape is not None:
        try:
            shape = tuple(int(v) for v in input_shape)
        except (TypeError, ValueError):
            raise InputError(f"input_shape must be ints like (1, 28, 28), got "
                             f"{input_shape!r}") from None
        if not shape or any(v < 1 for v in shape):
            raise InputError(f"input_shape must hold positive ints, got {input_shape!r}")
    if not isinstance(resize, bool):
        raise InputError(f"resize must be True or False, got {resize!r}")
    if grayscale is not None and not isinstance(grayscale, bool):
        raise InputError(f"grayscale must be True, False or None, got {grayscale!r}")
    if not isinstance(label_column, str) or not label_column:
        raise InputError(f"label_column must be a non-empty column name, got {label_column!r}")
    names = None
    if classes is not None:
        if isinstance(classes, str):
            raise InputError("classes must be a sequence of names, not one string")
        names = tuple(str(c) for c in classes)
        if len(set(names)) != len(names) or len(names) < 2:
            raise InputError(f"classes must be at least 2 distinct names, got {names!r}")
    if max_samples is not None and (isinstance(max_samples, bool)
                                    or not isinstance(max_samples, int) or max_samples < 2):
        raise InputError(f"max_samples must be an integer >= 2, got {max_samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative int, got {seed!r}")
    return Options(shape, resize, grayscale, label_column, vocabulary, names, max_samples, seed)


def natural_key(name: str) -> list[Any]:
    """Sort key that puts ``"2"`` before ``"10"`` (digits compared as numbers)."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def labels_from_values(values: np.ndarray, where: str) -> np.ndarray:
    """int64 labels of an array of label values: integers, or floats that are whole numbers."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise LabelError(f"{where} must be one label per sample (shape N), got shape "
                         f"{values.shape}")
    if values.dtype == bool or not (np.issubdtype(values.dtype, np.integer)
                                    or np.issubdtype(values.dtype, np.floating)):
        raise LabelError(f"{where} must hold integer labels 0..K-1, got dtype {values.dtype}; "
                         "save the labels as integers")
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise LabelError(f"{where} holds non-integer labels (sample {i}: {values[i]!r}); "
                             "labels must be class ids 0..K-1")
    labels = values.astype(np.int64)
    if labels.size and labels.min() < 0:
        i = int(np.argmin(labels))
        raise LabelError(f"{where} holds a negative label ({labels[i]} at sample {i}); labels "
                         "must be class ids 0..K-1")
    return labels


def check_labels(labels: np.ndarray, classes: Sequence[str], where: str) -> None:
    """Labels in ``[0, len(classes))`` and at least two distinct classes present."""
    k = len(classes)
    if labels.size and labels.max() >= k:
        raise LabelError(f"{where} holds label {int(labels.max())}, out of range for {k} "
                         f"classes; pass all class names (classes= / --classes) or fix the "
                         "labels")
    present = np.unique(labels)
    if len(present) < 2:
        only = classes[int(present[0])] if len(present) else "(none)"
        raise LabelError(f"{where} holds samples of one class only ({only!r}); an audit needs "
                         "samples of at least two classes")


def remap_classes(labels: np.ndarray, own: Sequence[str], wanted: Sequence[str] | None,
                  where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Relabel ``labels`` (indices into ``own``) as indices into ``wanted`` by class name."""
    if wanted is None or tuple(own) == tuple(wanted):
        return labels, tuple(own)
    missing = [c for c in own if c not in wanted]
    if missing:
        raise LabelError(f"{where} has classes {missing[:5]} that are not among classes="
                         f"{list(wanted)[:10]}; rename them or pass the model's full class list")
    lookup = np.array([list(wanted).index(c) for c in own], dtype=np.int64)
    return lookup[labels], tuple(wanted)


def pick(labels: np.ndarray, classes: tuple[str, ...], n: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded, stratified subset of ``n`` samples (all when ``n`` is None)."""
    index = torch.arange(len(labels))
    if n is None or n >= len(labels):
        return index.numpy()
    probe = Dataset(torch.zeros(len(labels), 1, 1, 1), torch.from_numpy(labels), classes,
                    extras={"index": index})
    return np.sort(stratified_subset(probe, n, seed=seed).extras["index"].numpy())


def target_channels(natural: set[int], opts: Options, where: str) -> int:
    """Channels of the result (see the module docstring)."""
    if opts.grayscale is not None:
        c = 1 if opts.grayscale else 3
        if opts.input_shape is not None and opts.input_shape[0] != c:
            raise ImageShapeError(f"grayscale={opts.grayscale} gives {c} channel(s) but "
                                  f"input_shape has {opts.input_shape[0]}; pass grayscale="
                                  f"{opts.input_shape[0] == 1}")
        return c
    if len(natural) > 1:
        raise ImageShapeError(f"{where} mixes grayscale and colour images; pass grayscale=True "
                              "(--grayscale) or grayscale=False (--color) to convert them all")
    (c,) = natural
    if opts.input_shape is not None and opts.input_shape[0] != c:
        want = opts.input_shape[0]
        raise ImageShapeError(
            f"{where} has {c}-channel images but input_shape has {want}; pass "
            f"grayscale={want == 1} ({'--grayscale' if want == 1 else '--color'}) to convert")
    return c


def target_size(sizes: Sequence[tuple[int, int]], names: Sequence[str], opts: Options,
                where: str) -> tuple[int, int]:
    """``(H, W)`` of the result (see the module docstring); sizes are ``(H, W)`` per image."""
    if opts.input_shape is not None:
        if len(opts.input_shape) != 3:
            raise InputError(f"images need input_shape (C, H, W), got {opts.input_shape}")
        want = (opts.input_shape[1], opts.input_shape[2])
        off = [i for i, s in enumerate(sizes) if s != want]
        if off and not opts.resize:
            i = off[0]
            raise ImageShapeError(
                f"{where}: {len(off)} image(s) are not {want[0]}×{want[1]} as input_shape "
                f"says (e.g. {names[i]} is {sizes[i][0]}×{sizes[i][1]}); pass resize=True "
                "(--resize) to resize them bilinearly")
        return want
    counts = Counter(sizes)
    if len(counts) > 1 and not opts.resize:
        (a, _), (b, _) = counts.most_common(2)
        ia, ib = sizes.index(a), sizes.index(b)
        raise ImageShapeError(
            f"{where} has images of {len(counts)} sizes (e.g. {names[ia]} is {a[0]}×{a[1]}, "
            f"{names[ib]} is {b[0]}×{b[1]}); pass resize=True (--resize) to resize them to "
            "the most common size, or input_shape= for the model's")
    top = max(counts.values())
    return next(s for s in sizes if counts[s] == top)


def conform(x: torch.Tensor, channels: int, size: tuple[int, int]) -> tuple[torch.Tensor,
                                                                              list[str]]:
    """Convert float images N×C×H×W in [0, 1] to ``channels`` and ``size``; list what was done."""
    notes = []
    if x.shape[1] != channels:
        if channels == 1:
            w = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
            x = (x * w).sum(dim=1, keepdim=True)
            notes.append("colour converted to grayscale (ITU-R 601-2 luma)")
        else:
            x = x.repeat(1, 3, 1, 1)
            notes.append("grayscale repeated to 3 channels")
    if tuple(x.shape[2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        notes.append("resized " + RESIZE_RULE.format(size=f"{size[0]}×{size[1]}"))
    return x.clamp_(0.0, 1.0).contiguous() if notes else x.contiguous(), notes
