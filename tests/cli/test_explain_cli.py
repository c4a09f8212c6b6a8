"""``deepscope explain`` end to end on a real MNIST slice."""

from __future__ import annotations

import json

from deepscope.cli.main import app


def _explain(runner, trained_checkpoint, out, *extra: str):
    return runner.invoke(app, [
        "explain", str(trained_checkpoint), "--dataset", "mnist", "--class", "1", "--n", "4",
        "--k", "5", "--out", str(out), "--json", "--quiet", *extra,
    ])


def test_explain_writes_npz_overlays_and_top_features(runner, trained_checkpoint, tmp_path):
    out = tmp_path / "exp" / "dmm.npz"
    result = _explain(runner, trained_checkpoint, out, "--method", "dmm-men")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 4 and summary["class_name"] == "1"
    top = summary["top_features"]
    assert len(top) == 4 and all(len(row) == 5 and len(set(row)) == 5 for row in top)
    assert all(0 <= f < 196 for row in top for f in row)  # 2×2 cells of a 28×28 image
    from deepscope.explain import Explanation, load_npz

    assert load_npz(out).top_features(5).tolist() == top
    saved = Explanation.load(out)  # the new format, with the explainer's extras
    assert saved.method == "dmm-men" and "fit_r2" in saved.extras
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_explain_refuses_existing_outputs_unless_overwrite(
    runner, trained_checkpoint, tmp_path, assert_one_line_error
):
    out = tmp_path / "r.npz"
    out.write_bytes(b"keep me")
    result = _explain(runner, trained_checkpoint, out, "--method", "random")
    assert_one_line_error(result, "already exists", "--overwrite")
    assert out.read_bytes() == b"keep me"
    result = _explain(runner, trained_checkpoint, out, "--method", "random", "--overwrite")
    assert result.exit_code == 0, result.output
    from deepscope.explain import Explanation

    assert Explanation.load(out).method == "random"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz", "r.png"]  # no temp files


def test_explain_rejects_a_non_npz_output_before_computing(
    runner, trained_checkpoint, tmp_path, assert_one_line_error
):
    result = _explain(runner, trained_checkpoint, tmp_path / "e.txt", "--method", "random")
    assert_one_line_error(result, "--out", ".npz")
    assert list(tmp_path.iterdir()) == []


def test_explain_rejects_a_class_out_of_range(
    runner, trained_checkpoint, tmp_path, assert_one_line_error
):
    result = runner.invoke(app, [
        "explain", str(trained_checkpoint), "--dataset", "mnist", "--class", "12",
        "--out", str(tmp_path / "e.npz"), "--quiet",
    ])
    assert_one_line_error(result, "--class")
