"""Atomic writes leave either the new file or the old one, never a partial or stray temp file."""

from __future__ import annotations

import os

import pytest

from deepscope._atomic import atomic_write, default_file_mode


def test_success_replaces_the_file_with_usual_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target, binary=False) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert os.stat(target).st_mode & 0o777 == default_file_mode()
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
