"""Fixtures shared by the CLI tests: a runner, two MNIST checkpoints trained once per session
(on the official train split and on the MODE train part), and the one-line-error assertion."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepscope.cli.main import app

DATA = os.environ.get("DEEPSCOPE_DATA", "")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def assert_one_line_error() -> Callable[..., None]:
    """``check(result, *fragments)``: exit 2, one line starting ``error:``, no traceback, every
    fragment in it."""

    def check(result, *fragments: str) -> None:
        assert result.exit_code == 2, result.output
        text = result.output.strip()
        assert "Traceback" not in text
        assert len(text.splitlines()) == 1, text
        assert text.startswith("error:"), text
        for frag in fragments:
            assert frag in text, text

    return check


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """An mlp-100k trained for 3 epochs on 3,000 MNIST images by ``deepscope train``."""
    if not (DATA and Path(DATA, "mnist").exists()):
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    out = tmp_path_factory.mktemp("ckpt") / "mnist-mlp.pt"
    result = CliRunner().invoke(app, [
        "train", "--dataset", "mnist", "--arch", "mlp-100k", "--epochs", "3", "--limit", "3000",
        "--out", str(out), "--quiet", "--json",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == str(out)
    return out


@pytest.fixture(scope="session")
def mode_checkpoint(tmp_path_factory) -> Path:
    """An mlp-100k trained for 1 epoch on the MODE train part (seed 1) of 2,000 MNIST images."""
    if not (DATA and Path(DATA, "mnist").exists()):
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    out = tmp_path_factory.mktemp("mode") / "mode.pt"
    result = CliRunner().invoke(app, [
        "train", "-d", "mnist", "-a", "mlp-100k", "--epochs", "1", "--limit", "2000",
        "--split", "mode", "--seed", "1", "--out", str(out), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training_data"]["protocol"] == "mode"
    return out


#: Four small static archives of this machine: three for training, one held out.
STARTS_LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
STARTS_TRAIN = ("libXdmcp.a", "libXfixes.a", "libpanel.a")
STARTS_HELD_OUT = "libXau.a"


@pytest.fixture(scope="session")
def starts_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private ``DEEPSCOPE_CACHE`` holding a function-starts dataset built by the CLI from
    four small archives (built once for every test module that needs it)."""
    paths = [STARTS_LIBDIR / n for n in (*STARTS_TRAIN, STARTS_HELD_OUT)]
    if not all(p.is_file() for p in paths):
        pytest.skip("the small static libraries of this test are not installed")
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSCOPE_CACHE", str(folder))
        result = CliRunner().invoke(app, ["data", "build", "function-starts", "--sources",
                                          *map(str, paths), "--held-out", STARTS_HELD_OUT,
                                          "--quiet"])
    assert result.exit_code == 0, result.output
    return folder
