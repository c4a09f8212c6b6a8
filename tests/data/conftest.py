"""Fixtures of the data tests: real-data roots that skip cleanly, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepscope.data import DATASETS


def _root_with(data_dir: Path, name: str, *relpaths: str) -> Path:
    wanted = relpaths or tuple(f.relpath for f in DATASETS.get(name).files())
    missing = [r for r in wanted if not (data_dir / r).is_file()]
    if missing:
        pytest.skip(f"staged data lacks {', '.join(missing)} under {data_dir}")
    return data_dir


@pytest.fixture
def mnist_root(data_dir: Path) -> Path:
    return _root_with(data_dir, "mnist")


@pytest.fixture
def fashion_root(data_dir: Path) -> Path:
    return _root_with(data_dir, "fashion-mnist")


@pytest.fixture
def faces_root(data_dir: Path) -> Path:
    return _root_with(data_dir, "att-faces")


@pytest.fixture
def cifar_jpeg_root(data_dir: Path) -> Path:
    return _root_with(data_dir, "cifar10", "cifar10-jpeg/cifar10_jpeg.tar.gz")


@pytest.fixture(autouse=True)
def _no_mirror_and_private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach the internet through a user's mirror or write the user's cache."""
    monkeypatch.delenv("DEEPSCOPE_MIRROR", raising=False)
    monkeypatch.setattr("deepscope.data._paths.cache_dir", lambda: tmp_path / "user-cache")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served by a local HTTP server on 127.0.0.1: ``(folder, base_url)``."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
