"""Raw sentences in, token ids out: the vocabulary a text checkpoint carries.

``deepscope train`` on a text dataset stores the training split's
:class:`~deepscope.data.text.Vocabulary` under ``metadata["vocabulary"]`` of the checkpoint, as
plain JSON (``Vocabulary.to_dict``), so the file still loads with ``weights_only=True`` and a
saved model can be used on new sentences:

>>> ckpt = models.load_checkpoint("sst2-cnn.pt")                       # doctest: +SKIP
>>> x = models.encode_texts(ckpt, ["not worth the price"])            # doctest: +SKIP
>>> models.predict_proba(ckpt.model, x)                                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from deepscope.data.text import Vocabulary
from deepscope.errors import InputError

__all__ = ["VOCAB_KEY", "encode_texts", "vocabulary_metadata", "vocabulary_of"]

#: The metadata key of a text checkpoint's vocabulary.
VOCAB_KEY = "vocabulary"


def vocabulary_metadata(vocab: Vocabulary | None) -> dict[str, Any]:
    """``{"vocabulary": vocab.to_dict()}`` to merge into checkpoint metadata (empty for None)."""
    return {} if vocab is None else {VOCAB_KEY: vocab.to_dict()}


def vocabulary_of(checkpoint: Any) -> Vocabulary | None:
    """The vocabulary stored in a loaded checkpoint (or its metadata mapping); ``None`` when it
    has none (image models, checkpoints saved without it)."""
    metadata = getattr(checkpoint, "metadata", checkpoint)
    if not isinstance(metadata, Mapping):
        raise InputError(f"expected a Checkpoint or its metadata, got {type(checkpoint).__name__}")
    stored = metadata.get(VOCAB_KEY)
    return None if stored is None else Vocabulary.from_dict(dict(stored))


def encode_texts(checkpoint: Any, texts: Sequence[str]) -> torch.Tensor:
    """Token ids (int64 N×T, 0 = padding) of raw sentences, with a checkpoint's vocabulary.

    Parameters
    ----------
    checkpoint : Checkpoint or mapping
        A loaded text checkpoint (:func:`deepscope.models.load_checkpoint`) or its metadata.
    texts : sequence of str
        The sentences (wrap a single one in a list).

    Raises
    ------
    InputError
        The checkpoint carries no vocabulary, or ``texts`` is not a sequence of str.
    """
    vocab = vocabulary_of(checkpoint)
    if vocab is None:
        raise InputError(
            "this checkpoint carries no vocabulary (metadata['vocabulary']); only text models "
            "saved by `deepscope train` on a text dataset (or with "
            "metadata=vocabulary_metadata(vocab)) can encode raw sentences"
        )
    return vocab.encode(texts)
