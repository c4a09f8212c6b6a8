"""Trained zoo models for the benchmarks: one training recipe per (architecture, dataset), cached.

>>> from bench.zoo import get_trained
>>> model = get_trained("cnn-8k", "mnist")        # trains once (minutes), then loads in a second

Checkpoints live in ``bench/.cache/zoo/`` (git-ignored; override with ``$DEEPSCOPE_BENCH_CACHE``)
as ``{arch}__{dataset}__seed{seed}.pt``, written atomically by
:func:`deepscope.models.save_checkpoint`. A cached file is reused only when its recorded recipe
equals the current one, so changing a recipe retrains.

Protocol: MNIST / Fashion-MNIST / CIFAR-10 train on the official training split minus a seeded,
stratified 10 % validation split (early stopping and best-epoch restore) and are tested on the
official test split. AT&T faces train on the fixed 8-per-subject training split for a fixed
number of epochs (no validation split: 80 images would be too few) and are tested on the other
2 images per subject. Normalisation statistics (mean/std per channel) come from the training
split and are stored in the model's buffers.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepscope.data import Dataset, load, train_val_split
from deepscope.errors import CheckpointError
from deepscope.models import (
    Checkpoint,
    EpochStats,
    Evaluation,
    augment,
    evaluate,
    fit,
    load_checkpoint,
    save_checkpoint,
    vocabulary_metadata,
    zoo,
)

_DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "zoo"
CACHE_DIR = Path(os.environ.get("DEEPSCOPE_BENCH_CACHE", "") or _DEFAULT_CACHE)
DIGIT_ARCHS = ("mlp-100k", "mlp-270k", "cnn-8k", "cnn-100k", "cnn-1.2m", "cnn-3.2m")
DIGIT_DATASETS = ("mnist", "fashion-mnist")
FACE_ARCH, FACE_DATASET = "face-vgg-1.2m", "att-faces"
CIFAR_ARCHS, CIFAR_DATASET = ("cifar-cnn-60k", "cifar-cnn-1m"), "cifar10"
AUGMENTS = {"digits": augment.digits, "faces": augment.faces}
TEXT_ARCHS, TEXT_DATASETS = ("text-cnn-1.9m", "text-bigru-1.9m"), ("sst2", "uci-sentiment")


@dataclass(frozen=True)
class Recipe:
    """How one (architecture, dataset) pair is trained."""

    epochs: int
    lr: float
    batch_size: int = 128
    weight_decay: float = 0.0
    augment: str | None = None  # key of AUGMENTS
    patience: int | None = 3
    val_fraction: float = 0.1  # 0 → no validation split, fixed epochs


# Chosen to meet the targets at the lowest cost on 2 CPU cores (see bench/results/train_zoo.md).
_MLP = Recipe(epochs=15, lr=2e-3, augment="digits", patience=5)
# text: the zoo's TrainingDefaults on SST-2 (67k phrases: a few epochs fill the 10-minute
# budget); UCI's 1,440 training sentences need more epochs (chosen on its validation split)
_TEXT_CNN = Recipe(epochs=5, lr=1e-3, batch_size=64, patience=2)
_TEXT_GRU = Recipe(epochs=5, lr=2e-3, batch_size=64, patience=2)
_RECIPES: dict[tuple[str, str], Recipe] = {
    ("mlp-100k", "mnist"): _MLP,
    ("mlp-270k", "mnist"): _MLP,
    ("mlp-100k", "fashion-mnist"): Recipe(epochs=15, lr=2e-3, patience=5),
    ("mlp-270k", "fashion-mnist"): Recipe(epochs=15, lr=2e-3, patience=5),
    ("cnn-8k", "mnist"): Recipe(epochs=6, lr=5e-3),
    ("cnn-8k", "fashion-mnist"): Recipe(epochs=15, lr=5e-3, patience=5),
    ("cnn-100k", "mnist"): Recipe(epochs=4, lr=3e-3),
    ("cnn-100k", "fashion-mnist"): Recipe(epochs=8, lr=3e-3),
    ("cnn-1.2m", "mnist"): Recipe(epochs=3, lr=2e-3),
    ("cnn-1.2m", "fashion-mnist"): Recipe(epochs=6, lr=2e-3),
    ("cnn-3.2m", "mnist"): Recipe(epochs=3, lr=2e-3),
    ("cnn-3.2m", "fashion-mnist"): Recipe(epochs=5, lr=2e-3),
    (FACE_ARCH, FACE_DATASET): Recipe(
        epochs=30, lr=2e-3, batch_size=32, augment="faces", patience=None, val_fraction=0.0
    ),
    ("cifar-cnn-60k", CIFAR_DATASET): Recipe(epochs=6, lr=3e-3, patience=None),
    ("cifar-cnn-1m", CIFAR_DATASET): Recipe(epochs=5, lr=2e-3, patience=None),
    ("text-cnn-1.9m", "sst2"): _TEXT_CNN,
    ("text-cnn-1.9m", "uci-sentiment"): Recipe(epochs=20, lr=1e-3, batch_size=32, patience=4),
    ("text-bigru-1.9m", "sst2"): _TEXT_GRU,
    ("text-bigru-1.9m", "uci-sentiment"): Recipe(epochs=20, lr=2e-3, batch_size=64, patience=5),
}

# Test-accuracy targets of the brief: (family, dataset) → minimum accuracy.
TARGETS: dict[tuple[str, str], float] = {
    ("cnn", "mnist"): 0.99,
    ("mlp", "mnist"): 0.98,
    ("cnn", "fashion-mnist"): 0.91,
    # issue 12: SST-2 dev (the "test" split) >= 0.83 for the best text model, UCI >= 0.80
    ("text-cnn", "sst2"): 0.83,
    ("text-rnn", "sst2"): 0.83,
    ("text-cnn", "uci-sentiment"): 0.80,
    ("text-rnn", "uci-sentiment"): 0.80,
}


def recipe(arch: str, dataset: str) -> Recipe:
    """The training recipe of ``arch`` on ``dataset`` (KeyError names the known pairs)."""
    try:
        return _RECIPES[(arch, dataset)]
    except KeyError:
        known = ", ".join(f"{a}/{d}" for a, d in _RECIPES)
        raise KeyError(f"no training recipe for {arch} on {dataset}; known: {known}") from None


def pairs() -> list[tuple[str, str]]:
    """Every (architecture, dataset) pair with a recipe."""
    return list(_RECIPES)


def target(arch: str, dataset: str) -> float | None:
    """The brief's test-accuracy target for ``arch`` on ``dataset``, if any."""
    return TARGETS.get((zoo.spec(arch).family, dataset))


def checkpoint_path(arch: str, dataset: str, seed: int = 0) -> Path:
    """Where the trained checkpoint of ``arch`` on ``dataset`` is cached."""
    return CACHE_DIR / f"{arch}__{dataset}__seed{seed}.pt"


def load_splits(dataset: str, seed: int = 0, val_fraction: float = 0.1
                ) -> tuple[Dataset, Dataset | None, Dataset]:
    """``(train, validation or None, test)`` of the benchmark protocol."""
    train = load(dataset, "train", progress=False)
    test = load(dataset, "test", progress=False)
    val = None
    if val_fraction > 0:
        train, val = train_val_split(train, val_fraction, seed=seed)
    return train, val, test


@dataclass(frozen=True)
class TrainResult:
    """A freshly trained model and how it went."""

    model: nn.Module
    arch: str
    dataset: str
    seed: int
    recipe: Recipe
    classes: tuple[str, ...]
    history: list[EpochStats]
    test: Evaluation
    seconds: float
    sizes: dict[str, int] | None = None  # samples per split: train, validation, test
    vocab: Any = None  # text datasets: the training split's Vocabulary

    @property
    def seconds_per_epoch(self) -> float:
        return sum(s.seconds for s in self.history) / max(len(self.history), 1)

    def metadata(self) -> dict[str, Any]:
        """Plain-type summary stored in the checkpoint."""
        return {
            "dataset": self.dataset,
            "seed": self.seed,
            "recipe": asdict(self.recipe),
            "epochs_run": len(self.history),
            "seconds_per_epoch": self.seconds_per_epoch,
            "seconds": self.seconds,
            "test_accuracy": self.test.accuracy,
            "test_per_label": [float(v) for v in self.test.per_label],
            "history": [s.to_dict() for s in self.history],
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "sizes": self.sizes,
        }


def train(arch: str, dataset: str, *, seed: int = 0, epochs: int | None = None,
          progress: bool = False) -> TrainResult:
    """Train ``arch`` on ``dataset`` with its recipe (``epochs`` overrides the recipe's)."""
    r = recipe(arch, dataset)
    if epochs is not None:
        r = Recipe(**{**asdict(r), "epochs": epochs})
    train_ds, val_ds, test_ds = load_splits(dataset, seed, r.val_fraction)
    if train_ds.vocab is not None:  # token ids: the vocabulary's size instead of pixel stats
        options: dict[str, Any] = {"vocab_size": len(train_ds.vocab)}
    else:
        dims = [0, 2, 3]
        options = {"mean": train_ds.x.mean(dim=dims).tolist(),
                   "std": train_ds.x.std(dim=dims).tolist()}
    model = zoo.build(arch, num_classes=train_ds.num_classes, seed=seed, **options)
    history: list[EpochStats] = []
    start = time.perf_counter()
    fit(
        model,
        train_ds,
        val=val_ds,
        epochs=r.epochs,
        seed=seed,
        lr=r.lr,
        batch_size=r.batch_size,
        weight_decay=r.weight_decay,
        patience=r.patience,
        augment=AUGMENTS[r.augment]() if r.augment else None,
        history=history,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    sizes = {"train": len(train_ds), "validation": len(val_ds) if val_ds is not None else 0,
             "test": len(test_ds)}
    return TrainResult(model, arch, dataset, seed, r, train_ds.classes, history,
                       evaluate(model, test_ds), seconds, sizes, train_ds.vocab)


def _ensure_cache_dir() -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    ignore = CACHE_DIR.parent / ".gitignore"
    if CACHE_DIR.parent.name == ".cache" and not ignore.exists():
        ignore.write_text("*\n")  # keep checkpoints and locks out of git


def save(result: TrainResult) -> Path:
    """Write ``result``'s model to the cache (atomically, replacing an older file)."""
    _ensure_cache_dir()
    return save_checkpoint(
        checkpoint_path(result.arch, result.dataset, result.seed),
        result.model,
        arch=result.arch,
        classes=result.classes,
        config={"num_classes": len(result.classes),
                **({"vocab_size": len(result.vocab)} if result.vocab is not None else {})},
        metadata={**result.metadata(), **vocabulary_metadata(result.vocab)},
        overwrite=True,
    )


@contextmanager
def training_lock(arch: str, dataset: str, seed: int = 0) -> Iterator[None]:
    """Exclusive lock per cached checkpoint, so concurrent processes train a pair only once."""
    _ensure_cache_dir()
    lock_path = checkpoint_path(arch, dataset, seed).with_suffix(".lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_checkpoint(arch: str, dataset: str, seed: int = 0) -> Checkpoint | None:
    """The cached checkpoint if it exists and was trained with the current recipe."""
    path = checkpoint_path(arch, dataset, seed)
    if not path.exists():
        return None
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError:  # e.g. written for an older version of the architecture
        return None
    if ckpt.metadata.get("recipe") != asdict(recipe(arch, dataset)):
        return None
    return ckpt


def cached(arch: str, dataset: str, seed: int = 0) -> nn.Module | None:
    """The cached model if its checkpoint exists and was trained with the current recipe."""
    ckpt = cached_checkpoint(arch, dataset, seed)
    return None if ckpt is None else ckpt.model


def get_trained(arch: str, dataset: str, seed: int = 0) -> nn.Module:
    """The trained model of ``arch`` on ``dataset``: from the cache, or trained and cached now.

    The model is in eval mode on the CPU. Training uses the recipe of :func:`recipe`; a cached
    checkpoint made with another recipe is replaced. While another process trains the same
    pair (e.g. ``bench/train_zoo.py``), this waits for it and then loads its checkpoint.
    """
    model = cached(arch, dataset, seed)
    if model is not None:
        return model
    with training_lock(arch, dataset, seed):
        model = cached(arch, dataset, seed)
        if model is not None:
            return model
        result = train(arch, dataset, seed=seed)
        save(result)
        return result.model
