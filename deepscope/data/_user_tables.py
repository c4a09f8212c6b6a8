"""Text files of a user: a CSV of tabular features, a TSV of ``text<TAB>label`` lines.

CSV
    UTF-8 (a byte-order mark is allowed), comma-separated, a header row naming the columns.
    ``label_column`` (default ``"label"``) holds the labels; every other column is a numeric
    feature (float32), in file order (``info["feature_names"]``). Empty cells, ``nan`` and
    ``inf`` are errors (impute or drop the rows first); so are text cells (encode categories
    first). Result: a ``"tabular"`` Dataset, ``x`` N×D.
TSV
    UTF-8 lines ``text<TAB>label`` (the text may hold tabs: the label is after the last one).
    A first line whose label field equals ``label_column`` is a header and skipped; blank lines
    are skipped. The texts are encoded with ``vocabulary`` (a deepscope text checkpoint's:
    ``models.vocabulary_of(checkpoint)``) into int64 N×T ids; the raw texts are kept in
    ``.texts``.
Labels (both)
    All integers: class ids (``classes`` names them, else ``"0" .. "K-1"``). Otherwise class
    names: mapped to ``classes`` by name when given, else the distinct names in natural order.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from deepscope.data._user_common import (
    LabelError,
    Options,
    UserDataError,
    check_labels,
    labels_from_values,
    natural_key,
    pick,
)
from deepscope.data.dataset import Dataset
from deepscope.errors import InputError


def _text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserDataError(f"{path} is not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); "
                            "save the file as UTF-8") from None


def _labels(values: list[str], classes: tuple[str, ...] | None, where: str
            ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer ids, or class names mapped to ids (see the module docstring)."""
    try:
        ids = [int(v) for v in values]
    except ValueError:
        ids = None
    if ids is not None:
        labels = labels_from_values(np.array(ids, dtype=np.int64), where)
        names = classes or tuple(str(i) for i in range(int(labels.max(initial=0)) + 1))
        return labels, names
    if any(_is_number(v) for v in values):
        bad = next(v for v in values if _is_number(v))
        raise LabelError(f"{where} mixes numbers ({bad!r}) and names; labels must be all class "
                         "ids 0..K-1 or all class names")
    names = classes or tuple(sorted(set(values), key=natural_key))
    lookup = {c: i for i, c in enumerate(names)}
    unknown = sorted(set(values) - set(lookup))
    if unknown:
        raise LabelError(f"{where} has labels {unknown[:5]} that are not among classes="
                         f"{list(names)[:10]}; rename them or pass the model's full class list")
    return np.array([lookup[v] for v in values], dtype=np.int64), tuple(names)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _header(rows: list[list[str]], path: Path, label_column: str) -> tuple[list[str], int]:
    if not rows:
        raise UserDataError(f"{path} has no header row; the first line must name the columns")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise LabelError(f"{path} has no column {label_column!r} (columns: {header[:10]}); pass "
                         "label_column= (--label-column) naming the label column")
    if len(header) < 2:
        raise UserDataError(f"{path} has no feature columns besides {label_column!r}")
    return header, header.index(label_column)


def _feature(cell: str, line: int, column: str, path: Path) -> float:
    try:
        value = float(cell)
    except ValueError:
        what = "an empty cell" if not cell.strip() else f"{cell.strip()[:30]!r}, not a number"
        raise UserDataError(f"{path} line {line}, column {column!r}: {what}; deepscope reads "
                            "numeric features only (impute gaps, encode categories)") from None
    if not math.isfinite(value):
        raise UserDataError(f"{path} line {line}, column {column!r}: {cell.strip()} (NaN or "
                            "infinite); impute or drop those rows") from None
    return value


def read_csv(path: Path, opts: Options, progress: bool = False) -> Dataset:
    """Read a CSV of tabular features as described in the module docstring."""
    try:
        rows = [r for r in csv.reader(io.StringIO(_text(path), newline="")) if r]
    except csv.Error as exc:
        raise UserDataError(f"{path} is not valid CSV ({exc}); quote cells that hold commas"
                            ) from None
    header, at = _header(rows, path, opts.label_column)
    if len(rows) < 2:
        raise UserDataError(f"{path} has a header but no rows")
    features, values = [], []
    names = [h for i, h in enumerate(header) if i != at]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UserDataError(f"{path} line {line} has {len(row)} cells but the header has "
                                f"{len(header)}; every row needs one value per column")
        values.append(row[at].strip())
        features.append([_feature(c, line, h, path) for i, (c, h) in
                         enumerate(zip(row, header, strict=True)) if i != at])
    labels, classes = _labels(values, opts.classes, f"{path} ({opts.label_column})")
    check_labels(labels, classes, f"{path} ({opts.label_column})")
    if opts.input_shape is not None and tuple(opts.input_shape) != (len(names),):
        raise InputError(f"{path} has {len(names)} feature columns but input_shape is "
                         f"{tuple(opts.input_shape)}; pass the CSV the model was trained on, "
                         f"or input_shape=({len(names)},)")
    keep = pick(labels, classes, opts.max_samples, opts.seed)
    x = torch.from_numpy(np.asarray(features, dtype=np.float32)[keep])
    info = {"format": "csv", "source": str(path), "feature_names": names,
            "label_column": opts.label_column, "conversions": []}
    return Dataset(x, torch.from_numpy(labels[keep]), classes, name=path.stem, split="user",
                   info=info)


def _tsv_lines(path: Path, label_column: str) -> tuple[list[str], list[str]]:
    texts, values = [], []
    for line, raw in enumerate(_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        text, tab, label = raw.rpartition("\t")
        if not tab:
            raise UserDataError(f"{path} line {line} has no tab; each line must be "
                                "text<TAB>label")
        if line == 1 and label.strip() == label_column:
            continue  # a header
        if not text.strip():
            raise UserDataError(f"{path} line {line} has an empty text before its tab")
        texts.append(text.strip())
        values.append(label.strip())
    if not texts:
        raise UserDataError(f"{path} has no text<TAB>label lines")
    return texts, values


def read_tsv(path: Path, opts: Options, progress: bool = False) -> Dataset:
    """Read ``text<TAB>label`` lines and encode them (module docstring)."""
    vocab = opts.vocabulary
    if vocab is None:
        raise UserDataError(f"{path} holds raw texts, which need the model's vocabulary: load "
                            "a deepscope text checkpoint (it carries one) or pass vocabulary=")
    if not callable(getattr(vocab, "encode", None)):
        raise InputError(f"vocabulary must be a deepscope Vocabulary, got "
                         f"{type(vocab).__name__}")
    texts, values = _tsv_lines(path, opts.label_column)
    labels, classes = _labels(values, opts.classes, f"{path} (labels)")
    check_labels(labels, classes, f"{path} (labels)")
    keep = pick(labels, classes, opts.max_samples, opts.seed)
    texts = [texts[i] for i in keep]
    ids = vocab.encode(texts)
    if opts.input_shape is not None and tuple(opts.input_shape) != tuple(ids.shape[1:]):
        raise InputError(f"the vocabulary encodes {path} as {ids.shape[1]} tokens per text, but "
                         f"input_shape is {tuple(opts.input_shape)}; use the model's own "
                         "vocabulary")
    info = {"format": "tsv", "source": str(path), "max_length": int(ids.shape[1]),
            "conversions": []}
    return Dataset(ids, torch.from_numpy(labels[keep]), classes, name=path.stem, split="user",
                   info=info, texts=texts, vocab=vocab)
