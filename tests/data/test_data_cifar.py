"""CIFAR-10: small JPEG and python-batch archives built in tmp_path, plus the real archive."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deepscope.data as dd
from deepscope.data import cifar
from deepscope.data.integrity import sha256_file
from deepscope.errors import DataCorruptError, DataMissingError

JPEG_REL = "cifar10-jpeg/cifar10_jpeg.tar.gz"
PY_REL = "cifar10/cifar-10-python.tar.gz"


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.array(img.convert("RGB"))


def build_jpeg_tar(path: Path, per_class: dict[str, int], size: int = 32) -> dict:
    """Write a small archive; return {(split, class, number): decoded pixels}."""
    rng = np.random.default_rng(0)
    entries = []
    for split, count in per_class.items():
        for cls in cifar.CLASSES:
            for number in range(count):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                entries.append((split, cls, number, jpeg(pixels)))
    order = rng.permutation(len(entries))  # archive order must not matter
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "cifar10-jpeg/README.txt", b"not an image")
        for i in order:
            split, cls, number, data = entries[i]
            add(tar, f"cifar10-jpeg/{split}/{cls}/{number:04d}.jpg", data)
    return {(s, c, n): decode(d) for s, c, n, d in entries}


def build_python_tar(path: Path, per_batch: int = 3, protocol: int = 2) -> dict:
    rng = np.random.default_rng(1)
    batches = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=per_batch).tolist()
            batch = {b"batch_label": b"x", b"labels": labels, b"data": data,
                     b"filenames": [b"f.png"] * per_batch}
            batches[name] = (data, labels)
            add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=protocol))
        add(tar, "cifar-10-batches-py/readme.html", b"<html></html>")
    return batches


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch):
    """Pin CIFAR file specs to the hashes of test-built archives."""

    def pin(attr: str, path: Path) -> None:
        spec = getattr(cifar.CIFAR10, attr)
        monkeypatch.setattr(cifar.CIFAR10, attr, dataclasses.replace(
            spec, sha256=sha256_file(path), size=path.stat().st_size, urls=()))

    return pin


def test_decode_jpeg_archive_orders_by_class_then_number(tmp_path: Path) -> None:
    path = tmp_path / JPEG_REL
    truth = build_jpeg_tar(path, {"train": 2, "test": 1})
    out = cifar.decode_jpeg_archive(path, progress=False)
    x, y = out["train"]
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.uint8
    assert y.tolist() == [c for c in range(10) for _ in range(2)]
    assert np.array_equal(x[5].transpose(1, 2, 0), truth[("train", "bird", 1)])
    assert out["test"][0].shape == (10, 3, 32, 32)
    assert np.array_equal(out["test"][0][9].transpose(1, 2, 0), truth[("test", "truck", 0)])


def test_load_jpeg_uses_and_fills_the_cache(tmp_path: Path, pinned,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    truth = build_jpeg_tar(root / JPEG_REL, {"train": 2, "test": 1})
    pinned("jpeg_file", root / JPEG_REL)
    ds = dd.load("cifar10", "all", root=root, download=False, progress=False)
    assert ds.x.shape == (30, 3, 32, 32) and ds.x.dtype == torch.float32
    assert ds.info["source"] == "cifar10-jpeg"
    expected = torch.from_numpy(truth[("test", "cat", 0)]).permute(2, 0, 1).float() / 255
    assert torch.equal(ds.x[20 + 3], expected)
    assert ds.classes == cifar.CLASSES
    folder = cifar._cache_folder(cifar.CIFAR10.jpeg_file.sha256)
    assert folder.is_relative_to(tmp_path / "user-cache")
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_x.npy", "test_y.npy", "train_x.npy", "train_y.npy"]
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]

    def fail(*args, **kwargs):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(cifar, "decode_jpeg_archive", fail)
    again = dd.load("cifar10", "train", root=root, download=False)
    assert torch.equal(again.x, ds.x[:20]) and torch.equal(again.y, ds.y[:20])


def test_jpeg_archive_errors(tmp_path: Path) -> None:
    bad_class = tmp_path / "a.tar.gz"
    with tarfile.open(bad_class, "w:gz") as tar:
        add(tar, "cifar10-jpeg/train/unicorn/0000.jpg", jpeg(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(DataCorruptError, match="unicorn"):
        cifar.decode_jpeg_archive(bad_class, progress=False)
    wrong_size = tmp_path / "b.tar.gz"
    build_jpeg_tar(wrong_size, {"train": 1}, size=16)
    with pytest.raises(DataCorruptError, match="32×32"):
        cifar.decode_jpeg_archive(wrong_size, progress=False)
    not_jpeg = tmp_path / "c.tar.gz"
    with tarfile.open(not_jpeg, "w:gz") as tar:
        add(tar, "cifar10-jpeg/test/cat/0000.jpg", b"garbage")
    with pytest.raises(DataCorruptError, match="cannot decode"):
        cifar.decode_jpeg_archive(not_jpeg, progress=False)


@pytest.mark.parametrize("protocol", [2, 4])
def test_python_archive(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / PY_REL
    batches = build_python_tar(path, protocol=protocol)
    train, test = cifar.read_python_archive(path, ["train", "test"])
    assert train.x.shape == (15, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert np.array_equal(train.x[3].reshape(-1), batches["data_batch_2"][0][0])
    assert train.y.tolist() == [v for i in range(1, 6) for v in batches[f"data_batch_{i}"][1]]
    assert test.y.tolist() == batches["test_batch"][1]


def test_python_archive_preferred_over_jpeg(tmp_path: Path, pinned) -> None:
    root = tmp_path / "data"
    build_jpeg_tar(root / JPEG_REL, {"train": 1, "test": 1})
    batches = build_python_tar(root / PY_REL)
    pinned("jpeg_file", root / JPEG_REL)
    pinned("python_file", root / PY_REL)
    ds = dd.load("cifar10", "test", root=root, download=False)
    assert ds.info["source"] == "cifar-10-python"
    assert ds.y.tolist() == batches["test_batch"][1]
    (root / PY_REL).write_bytes(b"broken")  # a corrupt preferred file is an error, not skipped
    with pytest.raises(DataCorruptError, match="cifar-10-python"):
        dd.load("cifar10", "test", root=root, download=False)


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_batch_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add(tar, "cifar-10-batches-py/test_batch", pickle.dumps({b"data": _Evil(marker)}))
    with pytest.raises(DataCorruptError, match="refusing to unpickle"):
        cifar.read_python_archive(path, ["test"])
    assert not marker.exists()


def test_missing_cifar_names_both_options(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as info:
        dd.load("cifar10", "train", root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "cifar10" / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "cifar10-jpeg" / "cifar10_jpeg.tar.gz") in message


@pytest.mark.slow
def test_real_jpeg_archive(cifar_jpeg_root: Path, data_dir: Path) -> None:
    test = dd.load("cifar10", "test", root=cifar_jpeg_root, download=False, progress=False)
    assert test.x.shape == (10000, 3, 32, 32)
    assert test.class_counts().tolist() == [1000] * 10
    train = dd.load("cifar10", "train", root=cifar_jpeg_root, download=False, progress=False)
    assert train.class_counts().tolist() == [5000] * 10
    samples = data_dir / "cifar10-samples" / "cifar10_test_first20.npz"
    if not samples.is_file():
        return
    with np.load(samples, allow_pickle=False) as npz:
        x_true, y_true = npz["x_test"], npz["y_test"]
    start = np.concatenate([[0], np.cumsum(test.class_counts())])
    for i, label in enumerate(y_true):  # test image i is <class>/<its rank in the class>.jpg
        rank = int(np.sum(y_true[:i] == label))
        got = test.x[start[label] + rank].permute(1, 2, 0).numpy() * 255
        mse = np.mean((got - x_true[i].astype(np.float64)) ** 2)
        assert 10 * np.log10(255**2 / mse) > 24  # lossy, but the same picture
