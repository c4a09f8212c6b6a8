"""Text datasets (sst2, uci-sentiment), the Vocabulary, and sequence Datasets in general."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import deepscope.data as dd
from deepscope.data.text import (
    MAX_LENGTH,
    Vocabulary,
    build_vocabulary,
    read_labelled,
    uci_test_mask,
)
from deepscope.errors import DataCorruptError, InputError

pytest.importorskip("tokenizers")

TRAIN = ["Not worth the price.", "Great value, great phone!", "not great", "the price is great",
         "worth it"]


def test_vocabulary_ids_unknown_padding_and_length() -> None:
    vocab = build_vocabulary(TRAIN)
    assert vocab.tokens[:2] == ("[PAD]", "[UNK]")
    # seen at least twice in training: great (4), not/worth/the/price (2), "." once -> unknown
    assert set(vocab.tokens[2:]) == {"great", "not", "worth", "the", "price"}
    assert vocab.tokens[2] == "great"  # most frequent first
    assert vocab.max_length == 6  # "great value , great phone !"
    ids = vocab.encode(["NOT worth the price, isn't it?", "great"])
    assert ids.dtype == torch.int64 and ids.shape == (2, 6)
    assert vocab.decode(ids[0]) == ["not", "worth", "the", "price", "[UNK]", "[UNK]"]
    assert ids[1].tolist() == [vocab.tokens.index("great"), 0, 0, 0, 0, 0]
    assert vocab.tokenize("isn't") == ["isn", "'", "t"]


def test_vocabulary_round_trip_and_bad_input() -> None:
    vocab = build_vocabulary(TRAIN, max_length=4)
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again.tokens == vocab.tokens and again.max_length == 4
    assert torch.equal(again.encode(TRAIN), vocab.encode(TRAIN))
    with pytest.raises(InputError, match="sequence of str"):
        vocab.encode("one sentence")
    with pytest.raises(InputError, match="not a saved Vocabulary"):
        Vocabulary.from_dict({"max_length": 3})
    assert build_vocabulary(["w " * 500]).max_length == MAX_LENGTH


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"good\t1\nbad\tx\n", "line 2: label 'x' is not 0 or 1"),
        (b"good\t1\nno tab here\n", "line 2 has no tab"),
        (b"good\t1\nbad\t2\n", "label '2'"),
        (b"good\t1\n\t0\n", "line 2 has an empty sentence"),
        (b"good\t1\ncaf\xe9 au lait\t1\n", "line 2 is not UTF-8"),
        (b"", "no labelled sentences"),
    ],
)
def test_read_labelled_rejects_bad_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataCorruptError, match=fragment) as info:
        read_labelled(path)
    assert str(path) in str(info.value) or fragment == "no labelled sentences"


def test_read_labelled_header_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"sentence \tlabel\r\nfine film \t1\r\n\r\nawful \t0\r\n")
    texts, labels = read_labelled(path, header="sentence\tlabel")
    assert texts == ["fine film", "awful"] and labels.tolist() == [1, 0]
    with pytest.raises(DataCorruptError, match="line 1 must be the header"):
        read_labelled(path, header="text\tlabel")


def test_uci_split_is_stratified_and_seeded() -> None:
    sources = np.repeat(["amazon", "yelp"], 1000)
    labels = np.tile(np.repeat([0, 1], 500), 2)
    mask = uci_test_mask(sources, labels)
    assert mask.sum() == 400
    for s in ("amazon", "yelp"):
        for y in (0, 1):
            assert mask[(sources == s) & (labels == y)].sum() == 100
    assert np.array_equal(mask, uci_test_mask(sources, labels))
    assert not np.array_equal(mask, uci_test_mask(sources, labels, seed=1))


def test_sequence_dataset_contract() -> None:
    x = torch.tensor([[3, 4, 0], [5, 0, 0]])
    y = torch.tensor([[1, 0, 0], [0, 0, 0]])
    ds = dd.Dataset(x, y, ("no", "yes"), groups=["g1", "g2"], texts=["a b", "c"])
    assert ds.modality == "sequence" and ds.per_position and ds.input_shape == (3,)
    assert ds.class_counts().tolist() == [2, 1]  # padding positions left out
    part = ds.subset([1])
    assert part.groups.tolist() == ["g2"] and part.texts == ["c"] and part.x.shape == (1, 3)
    assert ds.subset(slice(0, 1)).texts == ["a b"]
    assert ds.to("cpu").groups.tolist() == ["g1", "g2"]
    summary = ds.to_dict()
    assert summary["modality"] == "sequence" and summary["groups"] == {"g1": 1, "g2": 1}
    text = dd.Dataset(x, torch.tensor([0, 1]), ("neg", "pos"))
    assert not text.per_position and text.class_counts().tolist() == [1, 1]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"x": torch.tensor([[-1, 2]])}, ">= 0"),
        ({"x": torch.tensor([1, 2])}, "2-D (N, T)"),
        ({"y": torch.tensor([[0, 1, 0]])}, "shape of x"),
        ({"y": torch.tensor([[0, 2]])}, "[0, 2)"),
        ({"groups": ["a", "b"]}, "groups has 2 entries"),
        ({"texts": "ab"}, "sequence of str"),
    ],
)
def test_sequence_dataset_validation(kwargs: dict, fragment: str) -> None:
    args = {"x": torch.tensor([[1, 2]]), "y": torch.tensor([1]), "classes": ("a", "b")}
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        dd.Dataset(**args)
    assert fragment in str(info.value)


def _root(data_dir: Path, *relpaths: str) -> Path:
    if not all((data_dir / r).is_file() for r in relpaths):
        pytest.skip(f"staged data lacks {relpaths}")
    return data_dir


def test_sst2_real(data_dir: Path) -> None:
    root = _root(data_dir, "sst2/train.tsv", "sst2/dev.tsv")
    train = dd.load("sst2", "train", root=root, download=False)
    test = dd.load("sst2", "test", root=root, download=False)
    assert (len(train), len(test)) == (67349, 872)
    assert train.class_counts().tolist() == [29780, 37569]
    assert test.class_counts().tolist() == [428, 444]
    assert train.x.dtype == torch.int64 and train.x.shape[1] == test.x.shape[1] == 55
    assert test.texts[0].startswith("it 's a charming and often affecting journey")
    assert test.vocab.tokens == train.vocab.tokens and len(train.vocab) == 13395
    assert int((test.x == 1).sum()) > 0  # words of the dev set unseen in training: unknown
    assert test.vocab.decode(test.x[0])[:3] == ["it", "'", "s"]


def test_uci_real(data_dir: Path) -> None:
    rel = "sentiment-labelled-sentences/"
    root = _root(data_dir, rel + "amazon_cells_labelled.txt", rel + "yelp_labelled.txt")
    train = dd.load("uci-sentiment", "train", root=root, download=False)
    test = dd.load("uci-sentiment", "test", root=root, download=False)
    assert (len(train), len(test)) == (1600, 400)
    assert test.class_counts().tolist() == [200, 200]
    assert sorted(set(test.groups)) == ["amazon", "yelp"]
    # the vocabulary comes from training text only
    train_words = {w for t in train.texts for w in train.vocab.tokenize(t)}
    assert set(train.vocab.tokens[2:]) <= train_words
    assert train.info["max_length"] == train.x.shape[1]


def test_text_file_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "sst2"
    folder.mkdir()
    (folder / "train.tsv").write_bytes(b"sentence\tlabel\ngood \t1\n")
    (folder / "dev.tsv").write_bytes(b"sentence\tlabel\nbad \t0\n")
    with pytest.raises(DataCorruptError, match="sha256"):
        dd.load("sst2", root=tmp_path, download=False)


def _windows() -> dd.Dataset:
    x = torch.ones(10, 4, dtype=torch.int64)
    y = torch.zeros(10, 4, dtype=torch.int64)
    y[::2, 1] = 1  # even windows hold a start
    groups = ["liba.a"] * 4 + ["libb.a"] * 3 + ["libc.a"] * 3
    return dd.Dataset(x, y, ("no", "start"), groups=groups)


def test_stratified_split_of_per_position_labels() -> None:
    train, val = dd.train_val_split(_windows(), 0.4, seed=0)
    assert (len(train), len(val)) == (6, 4)
    assert int(val.y.amax(dim=1).sum()) == 2  # stratified by "holds a start": 2 of 5 each
    assert val.groups.shape == (4,)


def test_group_split_keeps_groups_apart() -> None:
    ds = _windows()
    train, val = dd.group_split(ds, 0.25, seed=0)
    assert len(train) + len(val) == 10 and len(val) >= 3
    assert not set(train.groups) & set(val.groups)
    again = dd.group_split(ds, 0.25, seed=0)[1]
    assert again.groups.tolist() == val.groups.tolist()
    with pytest.raises(InputError, match="no groups"):
        dd.group_split(dd.Dataset(ds.x, ds.y, ds.classes), 0.2)
