"""Downloads through a local HTTP server: success, checksum mismatch, offline."""

from __future__ import annotations

import hashlib
import shutil
import socket
from pathlib import Path

import pytest

import deepscope.data as dd
from deepscope.data.download import download_file, resolve_mirror, sources
from deepscope.errors import DataCorruptError, DataMissingError


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_download_success(http_root: tuple[Path, str], tmp_path: Path) -> None:
    served, url = http_root
    payload = bytes(range(256)) * 5000
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "sub" / "blob.bin"
    got = download_file(f"{url}/blob.bin", dest, hashlib.sha256(payload).hexdigest(),
                        timeout=5, progress=False)
    assert got == dest and dest.read_bytes() == payload
    assert leftovers(tmp_path / "out") == ["blob.bin"]  # no temp file left


def test_download_checksum_mismatch_leaves_nothing(http_root: tuple[Path, str],
                                                   tmp_path: Path) -> None:
    served, url = http_root
    (served / "blob.bin").write_bytes(b"tampered content")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DataCorruptError) as info:
        download_file(f"{url}/blob.bin", dest, "0" * 64, timeout=5, progress=False)
    assert hashlib.sha256(b"tampered content").hexdigest() in str(info.value)
    assert "0" * 64 in str(info.value)
    assert not dest.exists()
    assert leftovers(tmp_path / "out") == []


def test_download_http_error_and_refused(http_root: tuple[Path, str], tmp_path: Path) -> None:
    _, url = http_root
    dest = tmp_path / "out" / "nothing.bin"
    with pytest.raises(DataMissingError, match="HTTP 404"):
        download_file(f"{url}/nothing.bin", dest, "0" * 64, timeout=5, progress=False)
    with pytest.raises(DataMissingError, match="refused"):
        download_file(f"http://127.0.0.1:{closed_port()}/x", dest, "0" * 64, timeout=5,
                      progress=False)
    assert leftovers(tmp_path / "out") == []


def test_mirror_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dd.DATASETS.get("mnist").files()[0]
    assert sources(spec, None)[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    assert sources(spec, None)[1].startswith("http://yann.lecun.com/")
    assert resolve_mirror(None) is None
    monkeypatch.setenv("DEEPSCOPE_MIRROR", "http://127.0.0.1:9/base/")
    assert resolve_mirror(None) == "http://127.0.0.1:9/base/"
    assert resolve_mirror("http://other") == "http://other"
    assert sources(spec, resolve_mirror(None)) == [
        "http://127.0.0.1:9/base/mnist/train-images-idx3-ubyte.gz"
    ]


def test_offline_load_lists_every_missing_file(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("DEEPSCOPE_MIRROR", f"http://127.0.0.1:{closed_port()}")
    root = tmp_path / "data"
    with pytest.raises(DataMissingError) as info:
        dd.load("mnist", "train", root=root, progress=False)
    message = str(info.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert str(root / "mnist" / name) in message
    assert "refused" in message
    assert leftovers(tmp_path) == []


def test_load_downloads_real_files_from_mirror(mnist_root: Path, http_root: tuple[Path, str],
                                               tmp_path: Path) -> None:
    served, url = http_root
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (served / "mnist").mkdir(exist_ok=True)
        shutil.copyfile(mnist_root / "mnist" / name, served / "mnist" / name)
    root = tmp_path / "data"
    ds = dd.load("mnist", "test", root=root, mirror=url, progress=False)
    assert len(ds) == 10000 and ds.class_counts()[1] == 1135
    assert leftovers(root) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert [s.status for s in dd.verify("mnist", root=root)][2:] == ["ok", "ok"]
    # present files are used without any network (the mirror now refuses connections)
    again = dd.load("mnist", "test", root=root, mirror=f"http://127.0.0.1:{closed_port()}")
    assert again.y.equal(ds.y)


def test_load_rejects_a_mirror_with_wrong_content(http_root: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    served, url = http_root
    (served / "mnist").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (served / "mnist" / name).write_bytes(b"evil " + name.encode())
    root = tmp_path / "data"
    with pytest.raises(DataCorruptError) as info:
        dd.load("mnist", "test", root=root, mirror=url, progress=False)
    assert "expected 8d422c7b" in str(info.value)
    assert leftovers(root) == []
