"""What the zoo knows about an architecture: :class:`ArchSpec` (input, outputs, hidden layers,
modality) and :class:`TrainingDefaults` (the recommended training settings). Both are re-exported
by :mod:`deepscope.models.zoo`, which registers one spec per architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from deepscope.models import augment

__all__ = ["ArchSpec", "TrainingDefaults"]


@dataclass(frozen=True)
class ArchSpec:
    """Description of one zoo architecture.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"cnn-8k"``.
    family : str
        ``"mlp"``, ``"cnn"``, ``"vgg"``; sequence models: ``"tagger"`` (per-position
        outputs), ``"text-cnn"``, ``"text-rnn"`` (one output per sequence).
    input_shape : tuple of int
        ``(C, H, W)`` the model expects; ``(T,)`` for a sequence model: ``(200,)`` for the
        byte taggers (the window they were made for; any T works), ``(0,)`` for the text
        classifiers (any length). A 0 means "any size" (see :meth:`accepts`).
    num_classes : int
        Default number of outputs.
    description : str
        One line about the layers.
    hidden_layers : tuple of str
        Dotted names of the analysable hidden layers (block outputs and dense hidden layers),
        ordered input → output.
    training : TrainingDefaults
        The recommended training settings (what ``deepscope train`` uses when not told).
    modality : str
        ``"image"`` (float32 N×C×H×W in [0, 1]) or ``"sequence"`` (int64 N×T ids, 0 = padding);
        :attr:`input_dtype` follows from it.
    vocab_size : int or None
        Default number of ids of a sequence model (``build(..., vocab_size=...)``; 257 for
        bytes stored as value + 1; text models are built with their data's vocabulary size);
        ``None`` for images.
    """

    name: str
    family: str
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    hidden_layers: tuple[str, ...]
    training: TrainingDefaults = field(default_factory=lambda: TrainingDefaults())
    modality: str = "image"
    vocab_size: int | None = None

    @property
    def input_dtype(self) -> str:
        """``"float32"`` for images, ``"int64"`` (token / byte ids) for sequence models."""
        return "int64" if self.modality == "sequence" else "float32"

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether one sample of shape ``shape`` fits (a 0 in ``input_shape``: any size)."""
        return len(shape) == len(self.input_shape) and all(
            e in (0, g) for e, g in zip(self.input_shape, shape, strict=True))

    def example_input(self, n: int, *, seed: int = 0, length: int = 16,
                      vocab_size: int | None = None) -> torch.Tensor:
        """``n`` random inputs the model takes: uniform pixels, or token ids in
        ``[1, vocab_size)`` of ``length`` (where the shape says 0)."""
        g = torch.Generator().manual_seed(seed)
        shape = tuple(d or length for d in self.input_shape)
        if self.input_dtype == "int64":
            return torch.randint(1, vocab_size or self.vocab_size or 2, (n, *shape), generator=g)
        return torch.rand(n, *shape, generator=g)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["hidden_layers"] = list(self.hidden_layers)
        d["training"] = self.training.to_dict()
        return d


@dataclass(frozen=True)
class TrainingDefaults:
    """Recommended training settings of one architecture (on the dataset it was made for).

    ``deepscope train`` uses them for every option the user does not pass; in Python pass
    ``**zoo.training_defaults(name).fit_kwargs()`` to :func:`deepscope.models.fit` and hold out
    ``val_fraction`` yourself. Chosen on 2 CPU cores (``bench/zoo.py`` recipes; the face CNN
    below was measured for issue 11).

    Attributes
    ----------
    epochs, lr, batch_size, weight_decay
        As in :func:`deepscope.models.fit`.
    val_fraction : float
        Share of the training split held out for early stopping; 0 = train on everything for
        a fixed number of epochs (small datasets: 28 validation faces are too few to stop on,
        and large batches leave BatchNorm's running statistics unsettled).
    patience : int or None
        Early-stopping patience (``None``: never stop early).
    augment : str or None
        Name of a :mod:`deepscope.models.augment` preset (``"digits"``, ``"faces"``).
    class_weight : tuple of float or None
        Per-class loss weights (taggers: ``(1, w)`` weighs the rare function starts up).
    """

    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 128
    val_fraction: float = 0.1
    patience: int | None = 3
    augment: str | None = None
    weight_decay: float = 0.0
    class_weight: tuple[float, ...] | None = None

    def augmentation(self) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
        """The augmentation callable (``None`` without one)."""
        if self.augment is None:
            return None
        return {"digits": augment.digits, "faces": augment.faces}[self.augment]()

    def fit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`deepscope.models.fit` (all but the validation split)."""
        return {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "patience": self.patience, "weight_decay": self.weight_decay,
                "augment": self.augmentation(),
                "class_weight": None if self.class_weight is None else list(self.class_weight)}

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        d = asdict(self)
        if self.class_weight is not None:
            d["class_weight"] = list(self.class_weight)
        return d
