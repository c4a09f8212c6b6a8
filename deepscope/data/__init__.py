"""Datasets for deepscope: loading, integrity checks, download, splits and builds.

>>> from deepscope.data import load
>>> train = load("mnist", "train")          # doctest: +SKIP
>>> train.x.shape, train.y.dtype            # doctest: +SKIP
(torch.Size([60000, 1, 28, 28]), torch.int64)

Images (MNIST, Fashion-MNIST, CIFAR-10, AT&T faces) are float32 N×C×H×W in [0, 1]; sequences are
int64 N×T with 0 = padding: token ids of sentences (``sst2``, ``uci-sentiment``, with ``.texts``
and ``.vocab``) or bytes + 1 of object code (``function-starts``, per-byte labels and
``.groups``). Files live in :func:`data_dir` (``$DEEPSCOPE_DATA`` or the user cache). Every file
is pinned by sha256; missing files with an official source are downloaded (temp file, checksum,
atomic rename), and a missing-file error lists exactly which file belongs where. Derived data
(the function-start windows) is built locally, recorded in a manifest with its sources' sha256,
and cached in :func:`deepscope.data._paths.cache_dir` (``$DEEPSCOPE_CACHE`` or
``~/.cache/deepscope``).
"""

from deepscope.data import builtin  # noqa: F401  (registers the datasets)
from deepscope.data._paths import data_dir
from deepscope.data.catalog import DATASETS, DatasetSpec, build, load, names, verify
from deepscope.data.dataset import Dataset, from_arrays
from deepscope.data.integrity import FileSpec, FileStatus
from deepscope.data.splits import (
    ModeSplit,
    group_split,
    mode_split,
    stratified_split,
    stratified_subset,
    train_val_split,
)
from deepscope.data.text import Vocabulary, build_vocabulary
from deepscope.data.user import AuditSplit, audit_split, load_data

__all__ = [
    "DATASETS",
    "AuditSplit",
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "FileStatus",
    "ModeSplit",
    "Vocabulary",
    "audit_split",
    "build",
    "build_vocabulary",
    "data_dir",
    "from_arrays",
    "group_split",
    "load",
    "load_data",
    "mode_split",
    "names",
    "stratified_split",
    "stratified_subset",
    "train_val_split",
    "verify",
]
