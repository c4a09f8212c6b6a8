"""Bring your own data: one loader for the files a user arrives with.

:func:`load_data` returns a :class:`~deepscope.data.Dataset` from

- a **folder with one sub-folder per class** of PNG / JPEG images (Pillow;
  :mod:`deepscope.data._user_images`);
- an **.npz** with ``x`` (images N×C×H×W float in [0, 1], or N×H×W / N×H×W×C / N×C×H×W uint8
  0-255; 2-D: signed-integer token ids N×T, or other numbers as tabular rows N×D) and ``y``
  (integer labels), optionally ``classes`` (names, index = label) and attribute regions for AmI
  (``boxes`` or ``masks``, :mod:`deepscope.data._user_attributes`). Saved with ``numpy.savez``
  of plain arrays: object arrays are refused (they would need pickle);
- a **.csv** of tabular features with a label column, or a **.tsv** of ``text<TAB>label`` lines
  encoded with a text model's vocabulary (:mod:`deepscope.data._user_tables`).

Images are converted (channels, size) only when asked, with the rules of
:mod:`deepscope.data._user_common`; every conversion made is listed in
``info["conversions"]``. ``classes=`` (e.g. a model's class names) makes labels follow those
names; ``max_samples`` keeps a seeded, stratified subset, chosen before any image is decoded.
:func:`audit_split` then gives the roles an audit needs. Every problem is a one-line
:class:`~deepscope.errors.DeepscopeError` that says what to pass.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope._typing import PathType
from deepscope.data._user_attributes import fit_attributes, read_attributes
from deepscope.data._user_common import (
    ImageShapeError,
    LabelError,
    Options,
    UnsupportedFormatError,
    UserDataError,
    check_labels,
    check_options,
    conform,
    labels_from_values,
    pick,
    remap_classes,
    target_channels,
    target_size,
)
from deepscope.data._user_images import read_image_folder
from deepscope.data._user_split import AuditSplit, audit_split
from deepscope.data._user_tables import read_csv, read_tsv
from deepscope.data.dataset import Dataset
from deepscope.errors import DataCorruptError, DataMissingError
from deepscope.registry import Registry

__all__ = [
    "AuditSplit",
    "ImageShapeError",
    "LabelError",
    "UnsupportedFormatError",
    "UserDataError",
    "audit_split",
    "formats",
    "load_data",
]

_Reader = Callable[[Path, Options, bool], Dataset]
_READERS: Registry[_Reader] = Registry("data format")
#: File suffix -> reader name (a folder is always ``"image-folder"``).
_SUFFIXES = {".npz": "npz", ".csv": "csv", ".tsv": "tsv"}


def formats() -> list[str]:
    """Names of the formats :func:`load_data` reads."""
    return _READERS.names()


@_READERS.register("image-folder")
def _folder(path: Path, opts: Options, progress: bool) -> Dataset:
    return read_image_folder(path, opts, progress=progress)


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UserDataError(f"{path} holds Python objects (object arrays need pickle, which "
                                "deepscope never loads); save plain numeric and string arrays "
                                "with numpy.savez") from None
        raise DataCorruptError(f"cannot read {path} as .npz ({exc}); save it with "
                               "numpy.savez(path, x=..., y=...)") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataCorruptError(f"cannot read {path} as .npz: it is corrupt or truncated "
                               f"({type(exc).__name__}); save it again with numpy.savez") from None


def _npz_images(x: np.ndarray, path: Path) -> torch.Tensor:
    """Float32 N×C×H×W in [0, 1] of an ``x`` array (uint8 scaled by 1/255)."""
    if x.dtype == np.uint8:
        t = torch.from_numpy(x.astype(np.float32) / 255.0)
    elif np.issubdtype(x.dtype, np.floating):
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise UserDataError(f"{path}: x holds NaN or infinite values; clean or drop those "
                                "samples")
        if t.numel() and (float(t.min()) < 0.0 or float(t.max()) > 1.0):
            raise UserDataError(f"{path}: float x must lie in [0, 1], found "
                                f"[{float(t.min()):.4g}, {float(t.max()):.4g}]; scale the pixels "
                                "(e.g. uint8 / 255) or save them as uint8")
    else:
        raise UserDataError(f"{path}: x has dtype {x.dtype}; images must be uint8 (0-255) or "
                            "float in [0, 1], token ids int64 N×T")
    if t.ndim == 3:
        return t.unsqueeze(1)
    if t.ndim == 4 and t.shape[1] in (1, 3):
        return t
    if t.ndim == 4 and t.shape[3] in (1, 3):
        return t.permute(0, 3, 1, 2).contiguous()
    raise UserDataError(f"{path}: cannot read x of shape {tuple(x.shape)} as images; expected "
                        "N×H×W, N×C×H×W or N×H×W×C with C in {1, 3}")


def _npz_rows(x: np.ndarray, path: Path) -> torch.Tensor:
    """2-D ``x``: signed integers are token ids (int64 N×T), anything else numeric is tabular
    rows (float32 N×D, finite)."""
    if np.issubdtype(x.dtype, np.signedinteger):
        return torch.from_numpy(x.astype(np.int64))
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise UserDataError(f"{path}: 2-D x has dtype {x.dtype}; save token ids as int64 or "
                            "tabular rows as float")
    rows = x.astype(np.float32)
    if not np.isfinite(rows).all():
        raise UserDataError(f"{path}: x holds NaN or infinite values; impute or drop those rows")
    return torch.from_numpy(rows)


def _npz_classes(arrays: dict[str, np.ndarray], labels: np.ndarray, opts: Options,
                 path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    if "classes" in arrays:
        own = tuple(str(c) for c in np.asarray(arrays["classes"]).ravel())
        if len(set(own)) != len(own):
            raise LabelError(f"{path}: its classes array has repeated names; save each class "
                             "name once, index = label")
        check_labels(labels, own, f"{path} (y)")
        return remap_classes(labels, own, opts.classes, str(path))
    if opts.classes is not None:
        return labels, opts.classes
    return labels, tuple(str(i) for i in range(int(labels.max(initial=0)) + 1))


@_READERS.register("npz")
def _npz(path: Path, opts: Options, progress: bool) -> Dataset:
    arrays = _npz_arrays(path)
    if "x" not in arrays:
        raise UserDataError(f"{path} has no 'x' array (it has {sorted(arrays)}); save it with "
                            "numpy.savez(path, x=images, y=labels)")
    if "y" not in arrays:
        raise LabelError(f"{path} has no 'y' array of labels (it has {sorted(arrays)}); save "
                         "them with numpy.savez(path, x=images, y=labels)")
    x = arrays["x"]
    labels = labels_from_values(arrays["y"], f"{path} (y)")
    if len(x) != len(labels):
        raise LabelError(f"{path}: x has {len(x)} samples but y has {len(labels)} labels; save "
                         "one label per sample")
    labels, classes = _npz_classes(arrays, labels, opts, path)
    check_labels(labels, classes, f"{path} (y)")
    extras, info = read_attributes(arrays, len(x), path)
    keep = pick(labels, classes, opts.max_samples, opts.seed)
    x, labels = x[keep], labels[keep]
    extras = {k: v[torch.from_numpy(keep)] for k, v in extras.items()}
    info.update({"format": "npz", "source": str(path), "conversions": []})
    if x.ndim == 2:
        return Dataset(_npz_rows(x, path), torch.from_numpy(labels), classes, name=path.stem,
                       split="user", extras=extras, info=info)
    images = _npz_images(x, path)
    where = str(path)
    channels = target_channels({int(images.shape[1])}, opts, where)
    before = (int(images.shape[2]), int(images.shape[3]))
    size = target_size([before] * len(images), [f"sample {i}" for i in range(len(images))],
                       opts, where)
    images, notes = conform(images, channels, size)
    extras = fit_attributes(extras, before, size, path)
    info["conversions"] = notes
    return Dataset(images, torch.from_numpy(labels), classes, name=path.stem, split="user",
                   extras=extras, info=info)


_READERS.register("csv")(read_csv)
_READERS.register("tsv")(read_tsv)


def _format_of(path: Path) -> str:
    if not path.exists():
        raise DataMissingError(f"data path {path} does not exist; pass a folder of class "
                               "sub-folders, an .npz, a .csv or a .tsv file")
    if path.is_dir():
        return "image-folder"
    name = _SUFFIXES.get(path.suffix.lower())
    if name is None or name not in _READERS:
        raise UnsupportedFormatError(
            f"{path}: unsupported data file type {path.suffix or '(no suffix)'!r}; pass a folder "
            f"of class sub-folders or a file of type {', '.join(_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise UserDataError(f"{path} is empty; pass a file with samples")
    return name


def load_data(
    path: PathType,
    *,
    input_shape: tuple[int, ...] | None = None,
    resize: bool = False,
    grayscale: bool | None = None,
    label_column: str = "label",
    vocabulary: Any = None,
    classes: tuple[str, ...] | list[str] | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Dataset:
    """Read a user's data file or folder into a :class:`~deepscope.data.Dataset`.

    Parameters
    ----------
    path : str or PathLike
        An image folder (one sub-folder per class), ``.npz``, ``.csv`` or ``.tsv``.
    input_shape : tuple of int, optional
        The model's per-sample shape ``(C, H, W)``; images must match it (or be converted with
        ``resize`` / ``grayscale``), CSV rows must have ``D`` features for ``(D,)``.
    resize : bool
        Resize images of another or mixed size (rule in :mod:`deepscope.data._user_common`).
    grayscale : bool or None
        Convert images to 1 (True) or 3 (False) channels; None keeps them as they are.
    label_column : str
        The CSV column holding the labels.
    vocabulary : Vocabulary, optional
        Encodes TSV texts (a text checkpoint's: ``models.vocabulary_of(checkpoint)``).
    classes : sequence of str, optional
        Class names the labels must follow (e.g. the model's); image folders and ``.npz``
        classes are mapped to them by name.
    max_samples : int, optional
        Keep a seeded, stratified subset of this many samples.
    seed : int
        Seed of that subset.
    progress : bool
        Show a progress bar while decoding images.

    Returns
    -------
    Dataset
        ``name`` = the file or folder name, ``split = "user"``, ``info["format"]``,
        ``info["source"]`` and ``info["conversions"]`` set.
    """
    opts = check_options(input_shape, resize, grayscale, label_column, vocabulary, classes,
                         max_samples, seed)
    path = Path(path)
    fmt = _format_of(path)
    return _READERS.get(fmt)(path, opts, bool(progress))
