"""MNIST and Fashion-MNIST: the four standard IDX ``.gz`` files of each.

sha256 pins are those of the staged copies (``shared/data/SHA256SUMS``), which are
byte-identical to the original distributions (their published md5 values match).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepscope.data.catalog import DatasetSpec, RawSplit
from deepscope.data.download import FetchOptions, ensure_files
from deepscope.data.idx import read_idx
from deepscope.data.integrity import FileSpec
from deepscope.errors import DataCorruptError

_STEMS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class IdxDataset(DatasetSpec):
    """A dataset stored as IDX image/label file pairs (MNIST layout).

    Parameters
    ----------
    name : str
        Dataset name, also the folder inside the data folder.
    classes : tuple of str
        Class names.
    bases : sequence of str
        Official base URLs, tried in order.
    sha256 : dict
        File name → pinned sha256.
    sizes : dict
        File name → size in bytes.
    """

    def __init__(
        self,
        name: str,
        classes: tuple[str, ...],
        bases: Sequence[str],
        sha256: dict[str, str],
        sizes: dict[str, int],
        description: str = "",
    ) -> None:
        self.name = name
        self.classes = classes
        self.description = description
        self._files = {
            fname: FileSpec(
                relpath=f"{name}/{fname}",
                sha256=sha256[fname],
                urls=tuple(base + fname for base in bases),
                size=sizes[fname],
            )
            for fname in sha256
        }

    def files(self) -> tuple[FileSpec, ...]:
        return tuple(self._files.values())

    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        needed = [self._files[f] for split in splits for f in _STEMS[split]]
        paths = ensure_files(self.name, needed, root, options)
        raws = []
        for split in splits:
            image_file, label_file = (paths[self._files[f].relpath] for f in _STEMS[split])
            assert image_file is not None and label_file is not None
            images = read_idx(image_file, magic=0x803)
            labels = read_idx(label_file, magic=0x801)
            if len(images) != len(labels):
                raise DataCorruptError(
                    f"{image_file} has {len(images)} images but {label_file} has {len(labels)} "
                    "labels; the two files do not belong together"
                )
            if labels.size and int(labels.max()) >= len(self.classes):
                raise DataCorruptError(f"{label_file}: label {int(labels.max())} out of range")
            raws.append(RawSplit(x=images[:, None], y=labels.astype(np.int64)))
        return raws


MNIST = IdxDataset(
    "mnist",
    classes=tuple(str(i) for i in range(10)),
    bases=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
    sizes={
        "train-images-idx3-ubyte.gz": 9_912_422,
        "train-labels-idx1-ubyte.gz": 28_881,
        "t10k-images-idx3-ubyte.gz": 1_648_877,
        "t10k-labels-idx1-ubyte.gz": 4_542,
    },
    description="MNIST handwritten digits, 28×28 grey, 60,000 train / 10,000 test",
)

FASHION_MNIST = IdxDataset(
    "fashion-mnist",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    bases=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    sha256={
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
    sizes={
        "train-images-idx3-ubyte.gz": 26_421_880,
        "train-labels-idx1-ubyte.gz": 29_515,
        "t10k-images-idx3-ubyte.gz": 4_422_102,
        "t10k-labels-idx1-ubyte.gz": 5_148,
    },
    description="Fashion-MNIST (Zalando), 28×28 grey, 60,000 train / 10,000 test",
)
