"""What the everyday CLI paths tell the user and where they write (issue 11, items 5, 7, 8, 11
and the piped --help of item 12)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepscope.cli.main import app, leaf_commands

DATA = os.environ.get("DEEPSCOPE_DATA", "")
needs_data = pytest.mark.skipif(not (DATA and Path(DATA, "mnist").exists()),
                                reason="real datasets not available (set DEEPSCOPE_DATA)")




@pytest.mark.parametrize("name", sorted(leaf_commands()))
def test_piped_help_shows_every_option_name_in_full(name):
    cmd = leaf_commands()[name]
    result = CliRunner().invoke(app, [*name.split(), "--help"])  # stdout is not a TTY here
    assert result.exit_code == 0, result.output
    for param in cmd.params:
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("-"):
                assert opt in result.stdout, f"{opt} cut in `deepscope {name} --help`"


def test_demo_refuses_an_existing_report_folder_before_any_work(tmp_path, monkeypatch):
    from deepscope.audit import demo

    calls = []

    def fake_experiment(*args, **kwargs):
        calls.append(len(calls))
        raise KeyboardInterrupt  # stop right after the checks

    monkeypatch.setattr(demo, "demo_experiment", fake_experiment)
    (tmp_path / "report").mkdir()
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "report")])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert calls == []
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "report"), "--overwrite"])
    assert result.exit_code == 130 and calls == [0]
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "new")])
    assert result.exit_code == 130 and calls == [0, 1]


def test_make_demo_passes_overwrite_so_a_second_run_works():
    makefile = Path(__file__).resolve().parents[2] / "Makefile"
    demo_lines = [ln for ln in makefile.read_text().splitlines() if "deepscope demo" in ln]
    assert demo_lines and all("--overwrite" in ln for ln in demo_lines)


def test_train_checks_an_unwritable_out_before_loading_any_data(tmp_path, monkeypatch):
    from deepscope import data

    def no_data(*_a, **_k):
        raise AssertionError("data loaded before the output was checked")

    monkeypatch.setattr(data, "load", no_data)
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["train", "-d", "mnist", "-a", "mlp-100k",
                                      "-o", str(tmp_path / "file" / "m.pt")])
    assert result.exit_code == 2, result.output
    assert "cannot write" in result.stderr and "file is a file" in result.stderr


@needs_data
def test_evaluate_confusion_is_replaced_only_with_overwrite(trained_checkpoint, tmp_path):
    png = tmp_path / "c.png"
    png.write_bytes(b"old")
    args = ["evaluate", str(trained_checkpoint), "-d", "mnist", "--limit", "50", "-q",
            "--confusion", str(png)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and png.read_bytes() == b"old"
    result = CliRunner().invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG")


@needs_data
def test_explain_records_the_dataset_indices_and_says_when_the_table_is_cut(
        trained_checkpoint, tmp_path):
    from deepscope import explain

    out = tmp_path / "e.npz"
    args = ["explain", str(trained_checkpoint), "-d", "mnist", "-c", "1", "--n", "12",
            "--cell", "7", "--k", "3", "-m", "random", "-q", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "first 10 of 12 inputs" in result.stdout
    (tmp_path / "e.png").unlink()
    out.unlink()
    result = CliRunner().invoke(app, [*args, "--json"])
    summary = json.loads(result.stdout)
    saved = explain.Explanation.load(out)
    assert saved.extras["dataset_indices"] == summary["indices"]
    assert saved.extras["dataset"] == "mnist" and saved.extras["split"] == "test"
    assert len(summary["indices"]) == len(saved) == 12


@needs_data
def test_attack_says_only_correctly_classified_inputs_are_attacked(
        trained_checkpoint, tmp_path, monkeypatch):
    import torch

    from deepscope import models

    real = models.predict_logits

    def mostly_class_0(model, x, **kwargs):  # the sampled inputs: only the first 3 kept as is
        logits = real(model, x, **kwargs)
        if len(x) == 32:
            logits[3:] = torch.nn.functional.one_hot(torch.zeros(len(x) - 3, dtype=torch.long),
                                                     logits.shape[1]).float()
        return logits

    monkeypatch.setattr(models, "predict_logits", mostly_class_0)
    args = ["attack", str(trained_checkpoint), "-d", "mnist", "-a", "fgsm", "--n", "8", "-q",
            "-o", str(tmp_path / "a.npz")]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    sel = summary["selection"]
    assert sel["requested"] == 8 and sel["sampled"] == 32
    assert sel["attacked"] == sel["correct_in_sample"] == summary["n"] < 8
    assert "correctly" in sel["note"]
    result = CliRunner().invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert f"attacked {summary['n']} of the 8 requested inputs" in " ".join(result.stdout.split())


@needs_data
def test_outputs_are_written_only_after_the_work(trained_checkpoint, tmp_path, monkeypatch):
    """A failure while drawing (after the attack) leaves neither the .npz nor the grid."""
    from deepscope import attacks

    def broken_plot(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(attacks, "plot_grid", broken_plot)
    result = CliRunner().invoke(app, ["attack", str(trained_checkpoint), "-d", "mnist", "-a",
                                      "fgsm", "--n", "2", "-q", "-o", str(tmp_path / "a.npz")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "No space left" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_command_that_writes_has_overwrite_off_by_default():
    """One rule: an existing output is refused unless ``--overwrite`` (item 8)."""
    for name, cmd in leaf_commands().items():
        writes = [p for p in cmd.params if p.name in ("out", "confusion", "grid", "overlays")]
        if writes:
            names = {p.name for p in cmd.params}
            assert "overwrite" in names, f"`deepscope {name}` writes files but has no --overwrite"
            default = next(p for p in cmd.params if p.name == "overwrite").default
            assert default is False


@pytest.mark.parametrize("args", [[], ["detect"], ["data"]])
def test_a_group_without_a_command_still_prints_its_help(args):
    """The one-line usage errors leave typer's no-args help as it was (help, exit 2)."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "Usage:" in result.stdout and "Commands" in result.stdout and "error:" not in (
        result.stderr)


def test_os_errors_are_one_line_but_a_closed_pipe_is_left_to_typer(monkeypatch):
    from deepscope import data

    def raise_errno(code):
        def boom(*_a, **_k):
            raise OSError(code, os.strerror(code), "/some/file")
        return boom

    monkeypatch.setattr(data, "verify", raise_errno(5))  # EIO
    result = CliRunner().invoke(app, ["data", "verify"])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: Input/output error: /some/file")
    monkeypatch.setattr(data, "verify", raise_errno(32))  # EPIPE
    result = CliRunner().invoke(app, ["data", "verify"])
    assert result.exit_code == 1 and "error:" not in result.stderr
