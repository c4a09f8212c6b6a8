"""Sentiment datasets (SST-2, UCI sentiment) and the :class:`Vocabulary` that turns text into ids.

Tokens
    HF ``tokenizers`` (the optional ``text`` extra), trained locally on the training split only,
    never on test text: normaliser NFKC + lowercase; pre-tokeniser ``Whitespace``, i.e. the
    regex ``\\w+|[^\\w\\s]+`` (words, and runs of punctuation: "isn't" -> ``isn ' t``); model
    ``WordLevel``. The vocabulary keeps the tokens seen at least :data:`MIN_FREQUENCY` = 2 times
    in the training split, ordered by count then alphabetically (the same texts always give the
    same ids). Id 0 is ``[PAD]`` (padding), 1 is ``[UNK]`` (any other token).

Length
    Every sequence is padded with 0 or cut at its end to ``T`` = the longest training sentence
    in tokens, at most :data:`MAX_LENGTH` = 128; ``T`` is stored in the vocabulary and in
    ``info["max_length"]``. (SST-2: T = 55, no dev sentence is cut; UCI: T = 37 with seed 0.)

Datasets (label 0 = negative, 1 = positive; the raw sentences are kept in ``.texts``)
    ``sst2``: GLUE SST-2, ``sst2/train.tsv`` (67,349 phrases) as ``"train"`` and ``sst2/dev.tsv``
    (872 sentences) as ``"test"``; header ``sentence<TAB>label``, a space before the tab.
    ``uci-sentiment``: UCI Sentiment Labelled Sentences (Kotzias et al., KDD'15),
    ``sentiment-labelled-sentences/{amazon_cells,yelp}_labelled.txt`` (``text<TAB>label``,
    1,000 lines each). Split seeded and stratified by (source, label): in each of the four
    groups of 500, ``numpy.random.default_rng(0)`` permutes the lines (groups in the order
    amazon/0, amazon/1, yelp/0, yelp/1) and the first 100 go to ``"test"``: 1,600 train /
    400 test. ``.groups`` holds ``"amazon"`` or ``"yelp"``. Samples keep file order.
    Files are pinned by sha256 like the image datasets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope.data.catalog import DatasetSpec, RawSplit
from deepscope.data.download import FetchOptions, ensure_files
from deepscope.data.integrity import FileSpec
from deepscope.errors import DataCorruptError, DataMissingError, InputError

PAD, UNK = "[PAD]", "[UNK]"
MIN_FREQUENCY = 2
MAX_LENGTH = 128
CLASSES = ("negative", "positive")
UCI_TEST_PER_GROUP = 100
UCI_SEED = 0


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise DataMissingError(
            "text datasets need the HF tokenizers package; install it with "
            "`pip install 'deepscope[text]'` (or `pip install tokenizers`)"
        ) from None
    return tokenizers


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Token ids of a text dataset: a trained HF ``tokenizers`` WordLevel model and a length.

    Parameters
    ----------
    tokenizer_json : str
        The tokenizer, serialised by ``tokenizers.Tokenizer.to_str()``.
    max_length : int
        ``T``: :meth:`encode` pads or cuts every sequence to this length.

    Use :func:`build_vocabulary` to make one; :meth:`to_dict` / :meth:`from_dict` store it as
    plain JSON (e.g. in a model checkpoint, so raw sentences can be encoded later).
    """

    tokenizer_json: str
    max_length: int

    def __post_init__(self) -> None:
        if not isinstance(self.max_length, int) or self.max_length < 1:
            raise InputError(f"max_length must be a positive int, got {self.max_length!r}")

    @cached_property
    def _tokenizer(self) -> Any:
        try:
            return _tokenizers().Tokenizer.from_str(self.tokenizer_json)
        except Exception as exc:  # the Rust side raises its own Exception type
            raise InputError(f"not a serialised tokenizer ({exc})") from exc

    @cached_property
    def tokens(self) -> tuple[str, ...]:
        """The token of every id: ``tokens[0] == "[PAD]"``, ``tokens[1] == "[UNK]"``."""
        vocab = self._tokenizer.get_vocab()
        return tuple(sorted(vocab, key=vocab.__getitem__))

    def __len__(self) -> int:
        return len(self.tokens)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (before the unknown ones become ``[UNK]``)."""
        return [t for t, _ in self._tokenizer.pre_tokenizer.pre_tokenize_str(
            self._tokenizer.normalizer.normalize_str(text))]

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of ``texts``: int64 N×T, padded with 0 or cut at the end."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError("texts must be a sequence of str (wrap a single sentence in a list)")
        out = np.zeros((len(texts), self.max_length), np.int64)
        for row, enc in enumerate(self._tokenizer.encode_batch(list(texts))):
            ids = enc.ids[: self.max_length]
            out[row, : len(ids)] = ids
        return torch.from_numpy(out)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        """The tokens of one id sequence, padding left out."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return [self.tokens[i] for i in values if i != 0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``{"tokenizer": <tokenizer JSON>, "max_length": T}``."""
        return {"tokenizer": json.loads(self.tokenizer_json), "max_length": self.max_length}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(json.dumps(data["tokenizer"]), int(data["max_length"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a saved Vocabulary ({exc})") from exc


def build_vocabulary(
    texts: Sequence[str], *, min_frequency: int = MIN_FREQUENCY, max_length: int | None = None
) -> Vocabulary:
    """Train the WordLevel vocabulary on ``texts`` (a training split) as described above.

    ``max_length`` defaults to the longest of ``texts`` in tokens, at most :data:`MAX_LENGTH`.
    """
    tk = _tokenizers()
    tok = tk.Tokenizer(tk.models.WordLevel(unk_token=UNK))
    tok.normalizer = tk.normalizers.Sequence([tk.normalizers.NFKC(), tk.normalizers.Lowercase()])
    tok.pre_tokenizer = tk.pre_tokenizers.Whitespace()
    trainer = tk.trainers.WordLevelTrainer(
        min_frequency=min_frequency, special_tokens=[PAD, UNK], show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    if max_length is None:
        longest = max((len(e.ids) for e in tok.encode_batch(list(texts))), default=1)
        max_length = max(1, min(MAX_LENGTH, longest))
    return Vocabulary(tok.to_str(), int(max_length))


def read_labelled(path: Path, *, header: str | None = None) -> tuple[list[str], np.ndarray]:
    """Read ``text<TAB>label`` lines (label 0 or 1) of a UTF-8 file.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    header : str, optional
        Expected first line (e.g. ``"sentence\\tlabel"``), compared without surrounding blanks.

    Returns
    -------
    (list of str, numpy.ndarray)
        The stripped sentences and their int64 labels. Blank lines are skipped.

    Raises
    ------
    DataCorruptError
        Not UTF-8, a wrong header, a line without a tab, a label other than 0/1, or an empty
        sentence; the message gives the line number.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataCorruptError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    first = 0
    if header is not None:
        got = "\t".join(p.strip() for p in lines[0].split("\t")) if lines else ""
        if got != header:
            raise DataCorruptError(f"{path}: line 1 must be the header {header!r}, got {got!r}")
        first = 1
    texts, labels = [], []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        sentence, tab, label = line.rpartition("\t")
        if not tab:
            raise DataCorruptError(f"{path}: line {number} has no tab; expected text<TAB>label")
        if label.strip() not in ("0", "1"):
            raise DataCorruptError(
                f"{path}: line {number}: label {label.strip()!r} is not 0 or 1 (the last, "
                "tab-separated column is the label: 0 = negative, 1 = positive)"
            )
        if not sentence.strip():
            raise DataCorruptError(f"{path}: line {number} has an empty sentence")
        texts.append(sentence.strip())
        labels.append(int(label))
    if not texts:
        raise DataCorruptError(f"{path}: no labelled sentences")
    return texts, np.array(labels, dtype=np.int64)


def _raws(splits: Sequence[str], parts: dict[str, tuple[list[str], np.ndarray, Any]],
          vocab: Vocabulary) -> list[RawSplit]:
    info = {"max_length": vocab.max_length, "vocab_size": len(vocab),
            "min_frequency": MIN_FREQUENCY}
    out = []
    for split in splits:
        texts, labels, groups = parts[split]
        out.append(RawSplit(x=vocab.encode(texts).numpy(), y=labels, info=info, texts=texts,
                            groups=groups, vocab=vocab))
    return out


class SST2(DatasetSpec):
    """GLUE SST-2; the dev set is the ``"test"`` split."""

    name = "sst2"
    classes = CLASSES
    description = "SST-2 sentiment (GLUE): 67,349 train phrases / 872 dev sentences as test"
    modality = "sequence"

    def __init__(self) -> None:
        note = "copy it from the staged deepscope data (folder sst2/, GLUE SST-2 format)"
        self.train_file = FileSpec(
            "sst2/train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
            size=3_806_081, note=note)
        self.dev_file = FileSpec(
            "sst2/dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
            size=94_931, note=note)

    def files(self) -> tuple[FileSpec, ...]:
        return (self.train_file, self.dev_file)

    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        paths = ensure_files(self.name, [self.train_file, self.dev_file], root, options)
        parts = {}
        for split, spec in (("train", self.train_file), ("test", self.dev_file)):
            path = paths[spec.relpath]
            assert path is not None
            texts, labels = read_labelled(path, header="sentence\tlabel")
            parts[split] = (texts, labels, None)
        return _raws(splits, parts, build_vocabulary(parts["train"][0]))


def uci_test_mask(sources: np.ndarray, labels: np.ndarray, seed: int = UCI_SEED) -> np.ndarray:
    """The seeded, stratified test mask of the UCI split (see the module docstring)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for source in ("amazon", "yelp"):
        for label in (0, 1):
            idx = np.flatnonzero((sources == source) & (labels == label))
            n_test = round(len(idx) * UCI_TEST_PER_GROUP / 500)
            test[idx[rng.permutation(len(idx))[:n_test]]] = True
    return test


class UCISentiment(DatasetSpec):
    """UCI Sentiment Labelled Sentences, Amazon + Yelp, seeded stratified 80/20 split."""

    name = "uci-sentiment"
    classes = CLASSES
    description = "UCI sentiment sentences (Amazon + Yelp): 1,600 train / 400 test, seeded"
    modality = "sequence"

    def __init__(self) -> None:
        note = "copy it from the staged deepscope data (folder sentiment-labelled-sentences/)"
        self.sources = {
            "amazon": FileSpec(
                "sentiment-labelled-sentences/amazon_cells_labelled.txt",
                "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3", note=note),
            "yelp": FileSpec(
                "sentiment-labelled-sentences/yelp_labelled.txt",
                "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea", note=note),
        }

    def files(self) -> tuple[FileSpec, ...]:
        return tuple(self.sources.values())

    def read(self, root: Path, splits: Sequence[str], options: FetchOptions) -> list[RawSplit]:
        paths = ensure_files(self.name, list(self.sources.values()), root, options)
        texts: list[str] = []
        labels, sources = [], []
        for source, spec in self.sources.items():
            path = paths[spec.relpath]
            assert path is not None
            t, y = read_labelled(path)
            texts += t
            labels.append(y)
            sources += [source] * len(t)
        y_all, src = np.concatenate(labels), np.array(sources)
        test = uci_test_mask(src, y_all)
        parts = {}
        for split, mask in (("train", ~test), ("test", test)):
            rows = np.flatnonzero(mask)
            parts[split] = ([texts[i] for i in rows], y_all[rows], src[rows])
        return _raws(splits, parts, build_vocabulary(parts["train"][0]))


SST2_SPEC = SST2()
UCI_SENTIMENT = UCISentiment()
