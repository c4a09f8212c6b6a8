"""An image folder with one sub-folder per class, read with Pillow.

Layout: ``ROOT/<class name>/<image>.png|.jpg|.jpeg``. Class folders are sorted in natural order
(``"2"`` before ``"10"``); with ``classes=`` (e.g. the model's class names) each folder is the
class of that name instead. Hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) are skipped;
files at the top level are ignored; any other entry inside a class folder is an error, so no
sample is dropped silently. Pixel modes: ``1``/``L`` read as gray, ``LA`` as gray without its
alpha, 16-bit gray (``I;16``) scaled by 1/65535, ``RGB`` as colour, and ``RGBA``/``P``/``CMYK``
and the rest converted to RGB by Pillow (alpha dropped); each such conversion is listed in
``info["conversions"]``. Channels and size follow :mod:`deepscope.data._user_common`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from deepscope.data._user_common import (
    ImageShapeError,
    Options,
    UnsupportedFormatError,
    UserDataError,
    check_labels,
    conform,
    natural_key,
    pick,
    remap_classes,
    target_channels,
    target_size,
)
from deepscope.data.dataset import Dataset
from deepscope.errors import DataCorruptError

SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY = {"1", "L", "LA", "I;16", "I;16L", "I;16B", "I"}
_NATIVE = {"1", "L", "RGB"}


def _listing(root: Path) -> tuple[list[str], list[list[Path]]]:
    """Class folder names (natural order) and their image files (sorted)."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    dirs = sorted((p for p in entries if p.is_dir()), key=lambda p: natural_key(p.name))
    if not dirs:
        loose = [p.name for p in entries if p.suffix.lower() in SUFFIXES]
        if loose:
            raise UserDataError(f"{root} holds images ({loose[0]}, ...) but no class folders; "
                                "put the images of each class in a sub-folder named after it")
        raise UserDataError(f"{root} is empty; pass a folder with one sub-folder of PNG/JPEG "
                            "images per class")
    files = []
    for d in dirs:
        inside = sorted((p for p in d.iterdir() if not p.name.startswith(".")),
                        key=lambda p: natural_key(p.name))
        for p in inside:
            if not p.is_file() or p.suffix.lower() not in SUFFIXES:
                raise UnsupportedFormatError(
                    f"{p} is not a PNG or JPEG image; class folders may hold only .png, .jpg "
                    "and .jpeg files (move other files out)")
        if not inside:
            raise UserDataError(f"class folder {d} is empty; add its images or remove it")
        files.append(inside)
    return [d.name for d in dirs], files


def _header(path: Path) -> tuple[tuple[int, int], str]:
    try:
        with Image.open(path) as img:
            return (img.height, img.width), img.mode
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataCorruptError(f"cannot read image {path}: {exc}; replace or remove the "
                               "file") from None


def _pixels(path: Path) -> tuple[np.ndarray, str | None]:
    """Float pixels H×W×C in [0, 1] (C = 1 or 3) and the mode conversion made, if any."""
    try:
        with Image.open(path) as img:
            img.load()
            mode, note = img.mode, None
            if mode.startswith("I"):
                arr = np.asarray(img, dtype=np.float64) / 65535.0
                note = f"16-bit gray ({mode}) scaled by 1/65535"
            elif mode == "LA":
                arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
                note = "alpha dropped (LA)"
            elif mode in _NATIVE:
                arr = np.asarray(img.convert("L") if mode == "1" else img,
                                 dtype=np.float64) / 255.0
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
                note = f"{mode} converted to RGB by Pillow (alpha dropped)"
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError) as exc:
        raise DataCorruptError(f"cannot decode image {path}: {exc}; replace or remove the "
                               "file") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.clip(arr, 0.0, 1.0), note


def read_image_folder(root: Path, opts: Options, *, progress: bool = False) -> Dataset:
    """Read ``root`` as described in the module docstring."""
    folders, per_class = _listing(root)
    files = [f for fs in per_class for f in fs]
    labels = np.concatenate([np.full(len(fs), i, np.int64) for i, fs in enumerate(per_class)])
    labels, classes = remap_classes(labels, folders, opts.classes, f"image folder {root}")
    check_labels(labels, classes, f"image folder {root}")
    keep = pick(labels, classes, opts.max_samples, opts.seed)
    files, labels = [files[i] for i in keep], labels[keep]
    names = [str(f.relative_to(root)) for f in files]
    headers = [_header(f) for f in files]
    channels = target_channels({1 if m in _GRAY else 3 for _, m in headers}, opts,
                               f"image folder {root}")
    size = target_size([s for s, _ in headers], names, opts, f"image folder {root}")
    x = torch.empty((len(files), channels, *size), dtype=torch.float32)
    notes: Counter[str] = Counter()
    for i, f in enumerate(tqdm(files, desc="reading images", unit="img", disable=not progress,
                               leave=False)):
        arr, note = _pixels(f)
        if note:
            notes[note] += 1
        img = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
        img, done = conform(img, channels, size)
        for d in done:
            notes[d] += 1
        if img.shape[1:] != x.shape[1:]:  # conform guarantees it; a safety net for odd modes
            raise ImageShapeError(f"{f} could not be converted to {tuple(x.shape[1:])}")
        x[i] = img[0]
    info = {"format": "image-folder", "source": str(root),
            "conversions": [f"{k} ({v} image{'s' if v > 1 else ''})" for k, v in notes.items()]}
    return Dataset(x, torch.from_numpy(labels), classes, name=root.name or "images",
                   split="user", info=info)
