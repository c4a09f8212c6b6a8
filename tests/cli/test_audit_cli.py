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
    from deepscope.audit.spec import SECTIONS

    out = tmp_path / "audit"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    spec = SECTIONS.get("robustness")
    monkeypatch.setitem(SECTIONS._items, "robustness",
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


def _npz(path: Path, n: int, k: int) -> str:
    x = np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)
    np.savez(path, x=x, y=np.arange(n) % k)
    return str(path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _folder_with(path: Path, name: str) -> None:
    path.mkdir()
    (path / name).write_text("old")


def _pngs(folder: Path, sizes: dict[str, list[int]]) -> str:
    """Class sub-folders of grey PNGs: ``{"a": [8, 8, 10]}`` → three images of those sizes."""
    from PIL import Image

    for cls, side in sizes.items():
        (folder / cls).mkdir(parents=True)
        for i, n in enumerate(side):
            img = Image.fromarray(np.full((n, n), (40 * i) % 256, np.uint8))
            img.save(folder / cls / f"{i}.png")
    return str(folder)


def _bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


class _Evil:
    """A pickle that would run a shell command when loaded."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_pt(tmp: Path) -> str:
    evil = _Evil()
    evil.marker = str(tmp / "pwned")
    _Evil.marker = evil.marker
    torch.save({"model": evil}, tmp / "evil.pt")
    return str(tmp / "evil.pt")


# case → setup(tmp, out) returning (extra args, model override, data override, expected parts)
BAD = {
    "finished-report": lambda t, o: (_folder_with(o, "index.html"), None, None,
                                     ("finished audit report", "--overwrite")),
    "other-files": lambda t, o: (_folder_with(o, "notes.txt"), None, None, ("other files",)),
    "out-is-file": lambda t, o: (_write(o, "x") and None, None, None, ("is a file",)),
    "unknown-section": lambda t, o: (["--sections", "model,robustnes"], None, None,
                                     ("robustnes", "choose from")),
    "empty-sections": lambda t, o: (["--sections", ","], None, None, ("--sections",)),
    "budget-zero": lambda t, o: (["--budget-seconds", "0"], None, None, ("--budget-seconds",)),
    "max-samples-small": lambda t, o: (["--max-samples", "3"], None, None, ("--max-samples",)),
    "model-missing": lambda t, o: (None, str(t / "nope.ts"), None, ()),
    "model-not-a-model": lambda t, o: (None, str(_write(t / "m.ts", "not a model")), None, ()),
    "data-missing": lambda t, o: (None, None, str(t / "nope.npz"), ()),
    "repaired-exists": lambda t, o: (["--write-repaired", str(_write(t / "r.ts", "x"))], None,
                                     None, ("already exists",)),
    "repaired-folder-missing": lambda t, o: (["--write-repaired", str(t / "no" / "r.ts")],
                                             None, None, ("does not exist",)),
    "classes-mismatch": lambda t, o: (None, None, _npz(t / "five.npz", 100, 5), ()),
    "too-few-samples": lambda t, o: (None, None, _npz(t / "small.npz", 9, 3), ()),
    "unknown-option": lambda t, o: (["--frobnicate"], None, None, ()),
    "input-shape-not-numbers": lambda t, o: (["--input-shape", "a,b"], None, None,
                                             ("--input-shape",)),
    "one-class-name": lambda t, o: (["--classes", "cat"], None, None, ("--classes",)),
    "pickle-runs-code": lambda t, o: (None, _evil_pt(t), None, ()),
    "model-other-input-shape": lambda t, o: (None, None, _npz28(t / "big.npz"), ()),
    "labels-out-of-range": lambda t, o: (None, None, _npz_labels(t / "y7.npz", 7), ()),
    "one-class-only": lambda t, o: (None, None, _npz_labels(t / "y0.npz", 0), ()),
    "corrupt-npz": lambda t, o: (None, None, _bytes(t / "c.npz", b"PK\x03\x04garbage"), ()),
    "npz-without-y": lambda t, o: (None, None, _npz_no_y(t / "noy.npz"), ()),
    "mixed-image-sizes": lambda t, o: (None, None, _pngs(t / "imgs", {"0": [8, 10], "1": [8],
                                                                     "2": [8]}), ()),
    "empty-class-folder": lambda t, o: (None, None, _pngs(t / "imgs", {"0": [8], "1": [8],
                                                                      "2": []}), ()),
    "nan-in-csv": lambda t, o: (None, None, str(_write(t / "d.csv", "a,b,label\n1,nan,0\n"
                                                                     "2,3,1\n")), ()),
    "non-utf8-tsv": lambda t, o: (None, None, _bytes(t / "d.tsv", b"caf\xe9 ok\t1\n"), ()),
}


def _npz28(path: Path) -> str:
    x = np.random.default_rng(0).random((60, 1, 28, 28), dtype=np.float32)
    np.savez(path, x=x, y=np.arange(60) % 3)
    return str(path)


def _npz_labels(path: Path, label: int) -> str:
    x = np.random.default_rng(0).random((60, 1, 8, 8), dtype=np.float32)
    y = np.arange(60) % 3
    y[:30] = label
    if label == 0:
        y[:] = 0
    np.savez(path, x=x, y=y)
    return str(path)


def _npz_no_y(path: Path) -> str:
    np.savez(path, x=np.zeros((30, 1, 8, 8), np.float32))
    return str(path)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line(files, tmp_path, case):
    out = tmp_path / "out"
    args, model, data, expect = BAD[case](tmp_path, out)
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(app, ["audit", model or str(files.model), "--data",
                                      data or str(files.data), "--out", str(out), "--quiet",
                                      *(args or [])])
    _one_line(result, *expect)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    assert not (tmp_path / "pwned").exists()  # the pickle's code never ran
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
    from deepscope.cli import audit_cmd

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audit_cmd.tempfile, "TemporaryFile", denied)
    _one_line(_audit(files, tmp_path / "new"), "not writable", "Permission denied")
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_a_finished_report(files, tmp_path):
    out = tmp_path / "audit"
    assert _audit(files, out, "--sections", "model").exit_code == 0
    (out / "summary.json").write_text("{}")
    result = _audit(files, out, "--sections", "model", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["sections"] == {"model": "ok"}


def test_image_folder_of_mixed_sizes_is_audited_with_resize(files, tmp_path):
    folder = _pngs(tmp_path / "imgs", {"class0": [8] * 10 + [12] * 3, "class1": [8] * 10,
                                       "class2": [10] * 10})
    out = tmp_path / "audit"
    args = ["audit", str(files.model), "--data", folder, "--out", str(out), "--quiet",
            "--sections", "model", "--json"]
    _one_line(CliRunner().invoke(app, args), "--resize")
    result = CliRunner().invoke(app, [*args, "--resize"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 33 and summary["sections"] == {"model": "ok"}
