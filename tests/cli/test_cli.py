"""End-to-end tests of the ``deepscope`` command line on real data slices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepscope.cli.main import app

DATA = os.environ.get("DEEPSCOPE_DATA", "")
needs_data = pytest.mark.skipif(
    not (DATA and Path(DATA, "mnist", "train-labels-idx1-ubyte.gz").exists()),
    reason="real datasets not available (set DEEPSCOPE_DATA)",
)


@needs_data
def test_data_verify_passes_on_staged_data(runner):
    result = runner.invoke(app, ["data", "verify", "--json"])
    assert result.exit_code == 0, result.output
    statuses = json.loads(result.stdout)
    mnist = [s for s in statuses if s["dataset"] == "mnist"]
    assert len(mnist) == 4 and all(s["status"] == "ok" for s in mnist)


@needs_data
def test_data_verify_fails_on_a_corrupt_file(runner, tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(Path(DATA, "mnist"), root / "mnist")
    target = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-10])
    monkeypatch.setenv("DEEPSCOPE_DATA", str(root))
    result = runner.invoke(app, ["data", "verify", "mnist", "--json"])
    assert result.exit_code == 1
    statuses = {Path(s["path"]).name: s["status"] for s in json.loads(result.stdout)}
    assert statuses["t10k-labels-idx1-ubyte.gz"] == "corrupt"
    assert statuses["train-labels-idx1-ubyte.gz"] == "ok"


@needs_data
def test_data_list_reports_every_dataset(runner):
    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["dataset"]: r for r in json.loads(result.stdout)["datasets"]}
    assert {"mnist", "fashion-mnist", "cifar10", "att-faces"} <= set(rows)
    assert rows["mnist"]["ok"] == 4 and rows["mnist"]["corrupt"] == 0


def test_train_and_evaluate_round_trip(runner, trained_checkpoint, tmp_path):
    png = tmp_path / "cm.png"
    result = runner.invoke(app, [
        "evaluate", str(trained_checkpoint), "--dataset", "mnist", "--limit", "2000", "--json",
        "--confusion", str(png),
    ])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n"] == 2000
    assert payload["accuracy"] > 0.8  # 3 epochs on 2.7k images of a 100k-weight MLP
    assert set(payload["per_label"]) == {str(d) for d in range(10)}
    counts = [sum(row) for row in payload["confusion"]]
    per_label_from_confusion = [payload["confusion"][i][i] / counts[i] for i in range(10)]
    assert per_label_from_confusion == pytest.approx(list(payload["per_label"].values()))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_refuses_to_overwrite(runner, trained_checkpoint, assert_one_line_error):
    before = trained_checkpoint.read_bytes()
    result = runner.invoke(app, [
        "train", "--dataset", "mnist", "--arch", "mlp-100k", "--epochs", "1", "--limit", "500",
        "--out", str(trained_checkpoint), "--quiet",
    ])
    assert_one_line_error(result, "already exists")
    assert trained_checkpoint.read_bytes() == before


def test_unknown_dataset_is_a_one_line_error(runner, tmp_path, assert_one_line_error):
    result = runner.invoke(app, ["train", "--dataset", "mnits", "--arch", "mlp-100k",
                                 "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(result, "mnits")


def test_unknown_arch_is_a_one_line_error(runner, tmp_path, assert_one_line_error):
    result = runner.invoke(app, ["train", "--dataset", "mnist", "--arch", "resnet-9000",
                                 "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(result, "resnet-9000")


def test_missing_checkpoint_is_a_one_line_error(runner, tmp_path, assert_one_line_error):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope.pt"), "--dataset", "mnist"])
    assert_one_line_error(result, "nope.pt")


def test_corrupt_checkpoint_is_a_one_line_error(runner, tmp_path, assert_one_line_error):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    result = runner.invoke(app, ["evaluate", str(bad), "--dataset", "mnist"])
    assert_one_line_error(result, "bad.pt")


@needs_data
def test_wrong_input_shape_is_a_one_line_error(runner, trained_checkpoint, assert_one_line_error):
    if not Path(DATA, "att-faces", "att_faces.npz").exists():
        pytest.skip("att-faces not staged")
    result = runner.invoke(app, ["evaluate", str(trained_checkpoint), "--dataset", "att-faces"])
    assert_one_line_error(result, "shape")


def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "deepscope.cli.main", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("deepscope ")


def test_attack_writes_npz_grid_and_summary(
    runner, trained_checkpoint, tmp_path, assert_one_line_error
):
    import numpy as np

    out = tmp_path / "adv" / "fgsm.npz"
    result = runner.invoke(app, [
        "attack", str(trained_checkpoint), "--dataset", "mnist", "--attack", "fgsm",
        "--param", "eps=0.3", "--n", "20", "--out", str(out), "--json", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 20 and summary["success_rate"] > 0.5
    assert summary["mean_linf"] <= 0.3 + 1e-6
    with np.load(out, allow_pickle=False) as npz:
        assert npz["x_adv"].shape == (20, 1, 28, 28)
        assert np.abs(npz["x_adv"] - npz["x"]).max() <= 0.3 + 1e-6
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    again = runner.invoke(app, [
        "attack", str(trained_checkpoint), "--dataset", "mnist", "--attack", "fgsm",
        "--n", "5", "--out", str(out), "--quiet",
    ])
    assert_one_line_error(again, "already exists")


def test_attack_rejects_unknown_attack_and_parameter(
    runner, trained_checkpoint, tmp_path, assert_one_line_error
):
    out = str(tmp_path / "a.npz")
    bad_name = runner.invoke(app, ["attack", str(trained_checkpoint), "--dataset", "mnist",
                                   "--attack", "deepfool", "--out", out])
    assert_one_line_error(bad_name, "deepfool")
    bad_param = runner.invoke(app, ["attack", str(trained_checkpoint), "--dataset", "mnist",
                                    "--attack", "fgsm", "--param", "epsilon=0.1", "--out", out])
    assert_one_line_error(bad_param, "epsilon")
