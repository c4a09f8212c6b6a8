"""Integrity checks, IDX parsing, corrupt/missing files, the data folder."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import platformdirs
import pytest
import torch

import deepscope.data as dd
from deepscope.data import _paths
from deepscope.data._paths import cache_dir as real_cache_dir
from deepscope.data.idx import parse_idx, read_idx
from deepscope.data.integrity import sha256_file
from deepscope.errors import DataCorruptError, DataMissingError, InputError, RegistryError


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_parse_idx_roundtrip() -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(images), magic=0x803)
    assert out.dtype == np.uint8 and np.array_equal(out, images)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    out = parse_idx(idx_bytes(ints, 0x0C))
    assert out.dtype == np.int32 and out.dtype.isnative and out.tolist() == [1, -2, 70000]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\0", "truncated or not the right file"),
        (lambda b: b[:10], "header"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "magic"),
        (lambda b: b[:2], "not an IDX"),
    ],
)
def test_parse_idx_rejects_bad_data(mutate, message: str) -> None:
    good = idx_bytes(np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(DataCorruptError, match=message) as info:
        parse_idx(mutate(good), source="some/file.gz")
    assert "some/file.gz" in str(info.value)


def test_parse_idx_wrong_kind() -> None:
    labels = idx_bytes(np.zeros(5, np.uint8))
    with pytest.raises(DataCorruptError, match="0x801, expected 0x803"):
        parse_idx(labels, magic=0x803)


def test_read_idx_names_damaged_files(tmp_path: Path) -> None:
    images = np.ones((4, 3, 3), np.uint8)
    good = tmp_path / "good-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(idx_bytes(images)))
    assert np.array_equal(read_idx(good, magic=0x803), images)
    short = tmp_path / "short-idx3-ubyte.gz"  # valid gzip, truncated IDX inside
    short.write_bytes(gzip.compress(idx_bytes(images)[:-5]))
    with pytest.raises(DataCorruptError, match=r"short-idx3-ubyte\.gz.*truncated"):
        read_idx(short)
    cut = tmp_path / "cut-idx3-ubyte.gz"  # truncated gzip stream
    cut.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(DataCorruptError, match=r"cut-idx3-ubyte\.gz"):
        read_idx(cut)


def test_sha256_cache_follows_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"first")
    assert sha256_file(path) == hashlib.sha256(b"first").hexdigest()
    path.write_bytes(b"second version")
    assert sha256_file(path) == hashlib.sha256(b"second version").hexdigest()


def test_data_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_paths, "cache_dir", real_cache_dir)  # undo the autouse fixture
    monkeypatch.setenv("DEEPSCOPE_DATA", str(tmp_path))
    assert dd.data_dir() == tmp_path
    monkeypatch.setenv("DEEPSCOPE_DATA", "")
    assert dd.data_dir() == Path(platformdirs.user_cache_dir("deepscope")) / "data"
    monkeypatch.delenv("DEEPSCOPE_DATA")
    assert dd.data_dir() == Path(platformdirs.user_cache_dir("deepscope")) / "data"


def test_names_and_bad_arguments(tmp_path: Path) -> None:
    assert dd.names() == [
        "mnist", "fashion-mnist", "cifar10", "att-faces", "function-starts", "sst2", "uci-sentiment"
    ]
    assert dd.DATASETS.names() == dd.names()
    with pytest.raises(RegistryError, match=r"unknown dataset 'mnits'.*mnist"):
        dd.load("mnits", root=tmp_path)
    with pytest.raises(InputError, match="unknown split 'val'"):
        dd.load("mnist", "val", root=tmp_path)


def test_missing_without_download_lists_destinations(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as info:
        dd.load("mnist", "test", root=tmp_path, download=False)
    message = str(info.value)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert str(tmp_path / "mnist" / name) in message
    assert "train-images" not in message  # only the files this split needs
    assert "download=False" in message


def test_att_faces_missing_says_which_file_goes_where(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as info:
        dd.load("att-faces", root=tmp_path)  # download=True, but no official source exists
    message = str(info.value)
    assert str(tmp_path / "att-faces" / "att_faces.npz") in message
    assert "no official download" in message
    assert "1 required file(s)" in message  # the landmarks are optional ...
    assert f"optional, also missing: {tmp_path / 'att-faces' / 'landmarks_68.npz'}" in message
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_verify_reports_ok_missing_corrupt(tmp_path: Path) -> None:
    statuses = dd.verify("mnist", root=tmp_path)
    assert [s.status for s in statuses] == ["missing"] * 4
    assert all(s.actual_sha256 is None for s in statuses)
    target = statuses[0].path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not mnist")
    status = dd.verify("mnist", root=tmp_path)[0]
    assert status.status == "corrupt"
    assert status.actual_sha256 == hashlib.sha256(b"not mnist").hexdigest()
    assert status.to_dict()["path"] == str(target)
    every = dd.verify(root=tmp_path)
    assert {s.dataset for s in every} == set(dd.names())


# ---------------------------------------------------------------- real staged data


def copy_files(src_root: Path, dst_root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        (dst_root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / rel, dst_root / rel)


def test_truncated_copy_is_corrupt(mnist_root: Path, tmp_path: Path) -> None:
    rel = ["mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"]
    copy_files(mnist_root, tmp_path, *rel)
    victim = tmp_path / rel[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataCorruptError) as info:
        dd.load("mnist", "test", root=tmp_path, download=True)
    message = str(info.value)
    assert str(victim) in message
    assert dd.DATASETS.get("mnist").files()[2].sha256 in message  # expected hash
    assert hashlib.sha256(data[: len(data) // 2]).hexdigest() in message  # actual hash
    assert victim.stat().st_size == len(data) // 2  # a corrupt file is never silently replaced
    assert dd.verify("mnist", root=tmp_path)[2].status == "corrupt"


def test_verify_real_data(data_dir: Path) -> None:
    statuses = dd.verify(root=data_dir)
    present = [s for s in statuses if s.status != "missing"]
    if not present:
        pytest.skip(f"no staged dataset files under {data_dir}")
    assert all(s.status == "ok" for s in present), [s.to_dict() for s in present]


def test_mnist_real(mnist_root: Path) -> None:
    train = dd.load("mnist", "train", root=mnist_root, download=False, progress=False)
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.float32
    assert train.y.dtype == torch.int64 and train.y.shape == (60000,)
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    assert train.class_counts().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                             5851, 5949]
    assert train.classes == tuple("0123456789") and (train.name, train.split) == ("mnist", "train")
    test = dd.load("mnist", "test", root=mnist_root, download=False, progress=False)
    assert test.class_counts().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    both = dd.load("mnist", "all", root=mnist_root, download=False, progress=False)
    assert len(both) == 70000 and both.split == "all"
    assert both.y[:60000].equal(train.y) and both.x[60000:].equal(test.x)


def test_fashion_mnist_real(fashion_root: Path) -> None:
    test = dd.load("fashion-mnist", "test", root=fashion_root, download=False, progress=False)
    assert test.x.shape == (10000, 1, 28, 28)
    assert test.class_counts().tolist() == [1000] * 10
    assert test.classes[0] == "T-shirt/top" and test.classes[9] == "Ankle boot"
    assert 0.0 <= float(test.x.min()) and float(test.x.max()) <= 1.0


def test_att_faces_real(faces_root: Path) -> None:
    from deepscope.data.faces import TEST_IMAGES

    train = dd.load("att-faces", "train", root=faces_root, download=False)
    test = dd.load("att-faces", "test", root=faces_root, download=False)
    full = dd.load("att-faces", "all", root=faces_root, download=False)
    assert train.x.shape == (320, 1, 112, 92) and test.x.shape == (80, 1, 112, 92)
    assert train.class_counts().tolist() == [8] * 40 and test.class_counts().tolist() == [2] * 40
    assert train.classes[0] == "s1" and train.classes[-1] == "s40"
    assert set(train.extras) == {"subject", "image_index", "boxes"}
    assert train.extras["boxes"].dtype == torch.int64
    assert test.info["box_names"] == ("left_eye", "right_eye", "nose", "mouth")
    assert train.y.equal(train.extras["subject"])
    for s in range(40):  # the documented test images, the others in train
        chosen = sorted(test.extras["image_index"][test.y == s].tolist())
        assert tuple(chosen) == TEST_IMAGES[s]
        assert not set(chosen) & set(train.extras["image_index"][train.y == s].tolist())
    assert len(full) == 400 and full.y[:320].equal(train.y)
    boxes = full.extras["boxes"]
    assert boxes.shape == (400, 4, 4)
    x0, y0, x1, y1 = boxes.unbind(-1)
    assert bool(((0 <= x0) & (x0 < x1) & (x1 <= 92) & (0 <= y0) & (y0 < y1) & (y1 <= 112)).all())
    # eyes above the nose above the mouth; the person's left eye is on the image's right
    centre_y = (y0 + y1) / 2
    assert bool((centre_y[:, 0] < centre_y[:, 3]).all() and (centre_y[:, 2] < centre_y[:, 3]).all())
    assert bool(((x0 + x1)[:, 0] > (x0 + x1)[:, 1]).all())
    sub = full.subset([3, 7])
    assert sub.extras["boxes"].equal(boxes[[3, 7]])


def test_att_faces_split_table_is_what_the_docs_say() -> None:
    from deepscope.data.faces import TEST_IMAGES

    rng = np.random.default_rng(0)
    drawn = tuple(tuple(int(v) for v in sorted(rng.permutation(10)[:2] + 1)) for _ in range(40))
    assert drawn == TEST_IMAGES


def test_att_faces_without_landmarks(faces_root: Path, tmp_path: Path) -> None:
    copy_files(faces_root, tmp_path, "att-faces/att_faces.npz")
    ds = dd.load("att-faces", "test", root=tmp_path, download=False)
    assert set(ds.extras) == {"subject", "image_index"} and "box_names" not in ds.info
    assert len(ds) == 80
    os.chmod(tmp_path / "att-faces" / "att_faces.npz", 0o644)
