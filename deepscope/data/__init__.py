"""Datasets for deepscope: loading, integrity checks, download and splits.

>>> from deepscope.data import load
>>> train = load("mnist", "train")          # doctest: +SKIP
>>> train.x.shape, train.y.dtype            # doctest: +SKIP
(torch.Size([60000, 1, 28, 28]), torch.int64)

Files live in :func:`data_dir` (``$DEEPSCOPE_DATA`` or the user cache). Every file is pinned by
sha256; missing files with an official source are downloaded (temp file, checksum, atomic
rename), and a missing-file error lists exactly which file belongs where.
"""

from deepscope.data import builtin  # noqa: F401  (registers the datasets)
from deepscope.data._paths import data_dir
from deepscope.data.catalog import DATASETS, DatasetSpec, load, names, verify
from deepscope.data.dataset import Dataset, from_arrays
from deepscope.data.integrity import FileSpec, FileStatus
from deepscope.data.splits import (
    ModeSplit,
    mode_split,
    stratified_split,
    stratified_subset,
    train_val_split,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "FileStatus",
    "ModeSplit",
    "data_dir",
    "from_arrays",
    "load",
    "mode_split",
    "names",
    "stratified_split",
    "stratified_subset",
    "train_val_split",
    "verify",
]
