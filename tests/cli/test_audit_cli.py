"""``deepscope audit`` end to end on a TorchScript CNN and .npz data, and its bad-input paths:
each bad input is one ``error:`` line on stderr, a non-zero exit and nothing half-written."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deepscope import models
from deepscope.cli.audit_cmd import CACHE
from deepscope.cli.main import app
from deepscope.data import stratified_split
from deepscope.testing.data import blobs
from deepscope.testing.models import tiny_cnn


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> types.SimpleNamespace:
    """A tiny CNN (TorchScript) trained on synthetic 8×8 images, its held-out and training
    data as .npz files."""
    root = tmp_path_factory.mktemp("audit-cli")
    ds = blobs(900, 3, styles=2, noise=0.3, seed=0)
    train, held = stratified_split(ds, (0.4, 0.6), seed=0, names=("train", "held"))
    model = tiny_cnn(3)
    models.fit(model, train, epochs=3, seed=0, progress=False)
    ts = root / "tiny.ts"
    torch.jit.save(torch.jit.script(model), str(ts))
    for name, part in (("held.npz", held), ("train.npz", train)):
        np.savez(root / name, x=part.x.numpy(), y=part.y.numpy(), classes=np.array(part.classes))
    return types.SimpleNamespace(root=root, model=ts, data=root / "held.npz",
                                 train=root / "train.npz", n_held=len(held))


def _audit(files, out: Path, *extra: str):
    return CliRunner().invoke(app, ["audit", str(files.model), "--data", str(files.data),
                                    "--out", str(out), "--quiet", *extra])


def _one_line(result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    text = result.output.strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("error:"), text
    for frag in fragments:
        assert frag in text, text


def test_audit_writes_report_and_summary(files, tmp_path):
    out = tmp_path / "audit"
    result = _audit(files, out, "--train-data", str(files.train), "--json",
                    "--sections", "model,diagnosis,robustness", "--budget-seconds", "5")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert {"model", "accuracy", "per_label", "bugs", "sections"} <= set(summary)
    assert summary["sections"] == {"model": "ok", "diagnosis": "ok", "robustness": "ok"}
    assert summary["n"] == files.n_held
    assert summary["model"]["kind"] == "torchscript"
    page = (out / "index.html").read_text()
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page
    assert sorted(p.name for p in out.iterdir()) == sorted([CACHE, "index.html",
                                                            "summary.json"])


def test_interrupted_audit_resumes_without_overwrite(files, tmp_path, monkeypatch):
    from deepscope.audit import section_robustness

    out = tmp_path / "audit"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    spec = section_robustness.SECTIONS.get("robustness")
    monkeypatch.setitem(section_robustness.SECTIONS._items, "robustness",
                        dataclasses.replace(spec, compute=interrupted))
    first = _audit(files, out, "--sections", "model,robustness")
    assert first.exit_code == 130
    assert not (out / "index.html").exists()  # nothing half-written
    assert (out / CACHE / "model.npz").exists()  # what finished is kept for the resume
    monkeypatch.undo()
    again = CliRunner().invoke(app, ["audit", str(files.model), "--data", str(files.data),
                                     "--out", str(out), "--sections", "model,robustness"])
    assert again.exit_code == 0, again.output
    assert "model: from the cache" in again.output
    assert (out / "index.html").exists()


def test_failed_audit_leaves_no_folder(files, tmp_path):
    out = tmp_path / "new"
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((30, 1, 8, 8), np.float32), y=np.full(30, 7))
    _one_line(CliRunner().invoke(app, ["audit", str(files.model), "--data", str(bad), "--out",
                                       str(out), "--quiet"]))
    assert not out.exists()


@pytest.mark.parametrize("case", [
    "finished-report", "other-files", "out-is-file", "unknown-section", "empty-sections",
    "budget-zero", "max-samples-small", "model-missing", "model-not-a-model", "data-missing",
    "repaired-exists", "repaired-folder-missing", "classes-mismatch", "too-few-samples",
    "unknown-option",
])
def test_bad_input_is_one_line(files, tmp_path, case):
    out = tmp_path / "out"
    args: list[str] = []
    model, data = str(files.model), str(files.data)
    expect: tuple[str, ...] = ()
    if case == "finished-report":
        out.mkdir()
        (out / "index.html").write_text("old")
        expect = ("finished audit report", "--overwrite")
    elif case == "other-files":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        expect = ("other files",)
    elif case == "out-is-file":
        out.write_text("x")
        expect = ("is a file",)
    elif case == "unknown-section":
        args, expect = ["--sections", "model,robustnes"], ("robustnes", "choose from")
    elif case == "empty-sections":
        args, expect = ["--sections", ","], ("--sections",)
    elif case == "budget-zero":
        args, expect = ["--budget-seconds", "0"], ("--budget-seconds",)
    elif case == "max-samples-small":
        args, expect = ["--max-samples", "3"], ("--max-samples",)
    elif case == "model-missing":
        model = str(tmp_path / "nope.ts")
    elif case == "model-not-a-model":
        (tmp_path / "m.ts").write_text("not a model")
        model = str(tmp_path / "m.ts")
    elif case == "data-missing":
        data = str(tmp_path / "nope.npz")
    elif case == "repaired-exists":
        (tmp_path / "r.ts").write_text("x")
        args, expect = ["--write-repaired", str(tmp_path / "r.ts")], ("already exists",)
    elif case == "repaired-folder-missing":
        args = ["--write-repaired", str(tmp_path / "no" / "r.ts")]
        expect = ("does not exist",)
    elif case == "classes-mismatch":
        bad = tmp_path / "five.npz"
        x = np.random.default_rng(0).random((100, 1, 8, 8), dtype=np.float32)
        np.savez(bad, x=x, y=np.arange(100) % 5)
        data = str(bad)
    elif case == "too-few-samples":
        small = tmp_path / "small.npz"
        np.savez(small, x=np.zeros((9, 1, 8, 8), np.float32), y=np.arange(9) % 3)
        data = str(small)
    elif case == "unknown-option":
        args = ["--frobnicate"]
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(app, ["audit", model, "--data", data, "--out", str(out),
                                      "--quiet", *args])
    _one_line(result, *expect)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    if case == "finished-report":
        assert (out / "index.html").read_text() == "old"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_dir_is_refused(files, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _one_line(_audit(files, out), "not writable")
    finally:
        out.chmod(stat.S_IRWXU)


def test_read_only_parent_is_refused(files, tmp_path, monkeypatch):
    """As root a read-only mode does not stop writes, so the write check itself is failed."""
    import tempfile as tf

    from deepscope.cli import audit_cmd

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audit_cmd.tempfile, "TemporaryFile", denied)
    _one_line(_audit(files, tmp_path / "new"), "not writable", "Permission denied")
    assert not (tmp_path / "new").exists()
    assert tf.TemporaryFile is not denied


def test_overwrite_replaces_a_finished_report(files, tmp_path):
    out = tmp_path / "audit"
    assert _audit(files, out, "--sections", "model").exit_code == 0
    (out / "summary.json").write_text("{}")
    result = _audit(files, out, "--sections", "model", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["sections"] == {"model": "ok"}
