"""The benchmark's ground-truth section renders what the precision tables hold."""

from __future__ import annotations

from bench import explain_groundtruth as gtb


def _row(p: float, pg: float) -> dict:
    return {"precision": p, "precision_with_gates": pg, "seconds_per_explanation": 0.01,
            "queries_per_explanation": 500.0, "k": 3.0}


def _gt(dmm: float, lime: float) -> dict:
    table = {"box A": {"dmm-men": _row(0.5, dmm), "dmm-men (coef: the regime's rule)":
                       _row(dmm, 0.5), "lime": _row(lime, lime), "kernel-shap": _row(0.2, 0.2),
                       "random": _row(0.1, 0.1)}}
    return {"seeds": [0, 1], "budget": 500, "n_explain": 4, "tables": {"0": table, "1": table}}


def test_lines_and_verdicts():
    text = "\n".join(gtb.lines(_gt(0.95, 0.6)))
    assert "| box A | 0.50 / 0.95 | 0.95 / 0.50 | 0.60 / 0.60 |" in text
    assert "2 seeds × 4 explained inputs" in text
    assert gtb.target_lines(_gt(0.95, 0.6))[0].split(" — ")[1].startswith("met")
    assert gtb.target_lines(_gt(0.95, 0.95))[0].split(" — ")[1].startswith("tie")
    assert gtb.target_lines(_gt(0.85, 0.6))[0].split(" — ")[1].startswith("missed")


def test_bench_dmm_rows_name_their_mode():
    """The benchmark's global row must not fall back to DMMMEN's default (local) mode."""
    from bench.explain_run import DMM_MEN
    from deepscope.explain import DMMMEN

    for mode, make in DMM_MEN.items():
        params = make(500)
        assert params["mode"] == mode
        assert DMMMEN(**params).mode == mode
