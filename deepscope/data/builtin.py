"""Registers the built-in datasets in :data:`~deepscope.data.catalog.DATASETS`, in this order."""

from __future__ import annotations

from deepscope.data.catalog import DATASETS
from deepscope.data.cifar import CIFAR10
from deepscope.data.faces import ATT_FACES
from deepscope.data.function_starts import FUNCTION_STARTS
from deepscope.data.mnist import FASHION_MNIST, MNIST
from deepscope.data.text import SST2_SPEC, UCI_SENTIMENT

for _spec in (MNIST, FASHION_MNIST, CIFAR10, ATT_FACES, FUNCTION_STARTS, SST2_SPEC, UCI_SENTIMENT):
    DATASETS.register(_spec.name)(_spec)
