"""The demo's sequence explanations: one byte decision of a tagger and one sentence.

Beside the image explanations, the demo explains (with DMM-MEN by default) a function start a
small byte tagger finds in a held-out library — from the 41-byte window around it, as LEMNA —
and a sentence a small text model classifies correctly. Both models are trained here, briefly,
on a slice of their training split (the demo stays fast; the numbers say how good they are).
A dataset that is not available on this machine is skipped with a note instead of failing
(``function-starts`` is built from this machine's libraries by ``deepscope data build
function-starts``; ``sst2`` is read from ``$DEEPSCOPE_DATA``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from deepscope import data as ds_data
from deepscope import models
from deepscope.audit.sequence_explain import (
    SequenceExplanation,
    explain_position,
    explain_sentence,
)
from deepscope.errors import DataError

__all__ = ["SequenceSettings", "byte_example", "sentence_example", "sequence_examples"]


@dataclass(frozen=True)
class SequenceSettings:
    """How the demo's sequence models are trained and explained."""

    method: str = "dmm-men"
    budget: int = 500
    tagger: str = "byte-cnn-80k"
    tagger_windows: int = 2500
    text_model: str = "text-cnn-1.9m"
    text_sentences: int = 6000
    epochs: int = 1
    text_epochs: int = 2
    seed: int = 0


def _slice(ds: ds_data.Dataset, n: int, seed: int) -> ds_data.Dataset:
    if len(ds) <= n:
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    return ds.subset(idx)


def byte_example(train: ds_data.Dataset, test: ds_data.Dataset, s: SequenceSettings, *,
                 progress: bool = False) -> tuple[SequenceExplanation, str]:
    """Train the small tagger, explain its first true positive (a function start it finds)
    in ``test`` that has a whole 41-byte window; return it with a caption."""
    part = _slice(train, s.tagger_windows, s.seed)
    model = models.zoo.build(s.tagger, num_classes=2, vocab_size=257, seed=s.seed)
    models.fit(model, part, epochs=s.epochs, lr=3e-3, batch_size=64, class_weight=[1.0, 3.0],
               patience=None, seed=s.seed, progress=progress)
    ev = models.evaluate(model, test)
    pred = models.predict_logits(model, test.x).argmax(-1)
    hit = (pred == 1) & (test.y == 1)
    hit[:, :20] = False
    hit[:, -20:] = False
    rows, cols = torch.nonzero(hit, as_tuple=True)
    if not len(rows):
        raise DataError("the demo's tagger finds no function start to explain")
    i, p = int(rows[0]), int(cols[0])
    se = explain_position(model, test.x[i], p, method=s.method, budget=s.budget, label=1,
                          seed=s.seed, progress=progress)
    caption = (f"{s.tagger} trained for {s.epochs} epoch on {len(part):,} training windows "
               f"(held-out F1 {ev.f1:.2f}); test window {i}, function start at byte {p}, "
               f"explained by {s.method} from the 41 bytes around it ({s.budget} queries).")
    return se, caption


def sentence_example(train: ds_data.Dataset, test: ds_data.Dataset, s: SequenceSettings, *,
                     progress: bool = False) -> tuple[SequenceExplanation, str]:
    """Train the small text model, explain the first test sentence of at least 8 tokens that
    it classifies correctly as positive; return it with a caption."""
    part = _slice(train, s.text_sentences, s.seed)
    model = models.zoo.build(s.text_model, num_classes=train.num_classes,
                             vocab_size=len(train.vocab), seed=s.seed)
    models.fit(model, part, epochs=s.text_epochs, lr=1e-3, batch_size=64, patience=None,
               seed=s.seed, progress=progress)
    ev = models.evaluate(model, test)
    pred = models.predict_logits(model, test.x).argmax(-1)
    ok = (pred == test.y) & (test.y == 1) & ((test.x != 0).sum(1) >= 8)
    if not bool(ok.any()):
        raise DataError("the demo's text model classifies no long positive sentence correctly")
    i = int(torch.nonzero(ok)[0])
    se = explain_sentence(model, test.x[i], train.vocab.tokens, method=s.method,
                          budget=s.budget, label=int(test.y[i]), seed=s.seed,
                          progress=progress)
    caption = (f"{s.text_model} trained for {s.text_epochs} epochs on {len(part):,} training "
               f"sentences (test accuracy {ev.accuracy:.1%}); test sentence {i} "
               f"({test.classes[1]}), explained by {s.method} over its words "
               f"({s.budget} queries).")
    return se, caption


def sequence_examples(s: SequenceSettings, *, progress: bool = False,
                      log: Callable[[str], None] = print
                      ) -> tuple[list[tuple[SequenceExplanation, str]], list[str]]:
    """The byte and the sentence example, and a note for each one that could not be made."""
    from deepscope.data import function_starts

    examples, notes = [], []
    if function_starts.current_build() is None:
        notes.append("No byte explanation: the function-starts dataset is not built on this "
                     "machine (run `deepscope data build function-starts`).")
    else:
        log(f"explaining a function start of a small byte tagger with {s.method}")
        try:
            train = ds_data.load("function-starts", "train", progress=progress)
            test = ds_data.load("function-starts", "test", progress=progress)
            examples.append(byte_example(train, test, s, progress=progress))
        except DataError as exc:
            notes.append(f"No byte explanation: {exc}")
    log(f"explaining a sentence of a small SST-2 model with {s.method}")
    try:
        train = ds_data.load("sst2", "train", progress=progress)
        test = ds_data.load("sst2", "test", progress=progress)
        examples.append(sentence_example(train, test, s, progress=progress))
    except DataError as exc:
        notes.append(f"No sentence explanation: {exc}")
    return examples, notes
