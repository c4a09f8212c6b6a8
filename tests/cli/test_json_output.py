"""Every ``--json`` prints exactly one JSON document on stdout, progress or not (issue 11,
item 9): progress bars, epoch lines and console messages go to stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deepscope.cli.main import app, leaf_commands

DATA = os.environ.get("DEEPSCOPE_DATA", "")
pytestmark = pytest.mark.skipif(not (DATA and Path(DATA, "mnist").exists()),
                                reason="real datasets not available (set DEEPSCOPE_DATA)")



M = "{in}/model.pt"
#: one run of every command that has --json; none passes --quiet
COMMANDS = {
    "train": ("train", "-d", "mnist", "-a", "mlp-100k", "--epochs", "2", "--limit", "300",
              "-o", "{out}/m.pt"),
    "evaluate": ("evaluate", M, "-d", "mnist", "--limit", "100"),
    "attack": ("attack", M, "-d", "mnist", "-a", "fgsm", "--n", "3", "-o", "{out}/a.npz"),
    "explain": ("explain", M, "-d", "mnist", "-c", "1", "--n", "2", "--cell", "7", "--k", "3",
                "-m", "random", "-o", "{out}/e.npz"),
    "detect fit": ("detect", "fit", M, "-d", "mnist", "-m", "squeeze", "--limit", "60",
                   "-o", "{out}/d.npz"),
    "detect run": ("detect", "run", "{in}/det.npz", M, "-d", "mnist", "--limit", "20"),
    "diagnose": ("diagnose", M, "-d", "mnist", "--limit", "600"),
    "repair": ("repair", "{in}/mode.pt", "-d", "mnist", "-l", "3", "-k", "underfit",
               "--limit", "600", "--budget", "50", "--batch", "25", "-o", "{out}/r.pt"),
    "audit": ("audit", M, "--data", "{in}/held.npz", "--out", "{out}/audit", "--sections",
              "model"),
    "data list": ("data", "list"),
    "data build": ("data", "build", "function-starts", "--sources", "{lib}libz.a",
                   "{lib}libbz2.a", "--held-out", "libbz2.a"),
    "data verify": ("data", "verify", "mnist"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, trained_checkpoint, mode_checkpoint) -> Path:
    root = tmp_path_factory.mktemp("json-inputs")
    shutil.copy(trained_checkpoint, root / "model.pt")
    shutil.copy(mode_checkpoint, root / "mode.pt")  # repair needs a model trained on MODE's part
    result = CliRunner().invoke(app, ["detect", "fit", str(root / "model.pt"), "-d", "mnist",
                                      "-m", "squeeze", "--limit", "60", "-o",
                                      str(root / "det.npz"), "-q"])
    assert result.exit_code == 0, result.output
    from deepscope.data import load, stratified_subset

    held = stratified_subset(load("mnist", "test", progress=False), 200, seed=0)
    np.savez(root / "held.npz", x=held.x.numpy(), y=held.y.numpy())
    return root


def test_the_table_has_every_command_with_json():
    assert set(COMMANDS) == {name for name, cmd in leaf_commands().items()
                             if any("--json" in p.opts for p in cmd.params)}


def _static_lib_dir() -> str:
    """The folder of the machine's static libraries (where gcc finds libc.a), with a slash."""
    try:
        libc = subprocess.run(["gcc", "-print-file-name=libc.a"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("gcc is needed to find the static libraries")
    return str(Path(libc).parent) + "/"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_json_is_the_only_thing_on_stdout(name, inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSCOPE_CACHE", str(tmp_path / "cache"))  # data build writes there
    lib = _static_lib_dir() if name == "data build" else ""
    args = [a.replace("{in}", str(inputs)).replace("{out}", str(tmp_path)).replace("{lib}", lib)
            for a in COMMANDS[name]]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # exactly one document, nothing before or after it


def test_train_json_epoch_lines_go_to_stderr(inputs, tmp_path):
    args = [a.replace("{out}", str(tmp_path)) for a in COMMANDS["train"]]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs_run"] == 2
    assert "epoch 1:" in result.stderr and "epoch 1:" not in result.stdout
