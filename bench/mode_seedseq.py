"""MODE table cells before and after repair's seeds came from ``numpy.random.SeedSequence``.

The "One core" redesign derived every repair seed with ``SeedSequence`` instead of the ad hoc
``seed * 100003 + round``. Same buggy models, same strategies, other random draws: this compares
the cells of ``bench/results/mode.json`` (older code) with a rerun of the same cells by the
current code and asks whether the conclusions move beyond seed noise.

Usage (the rerun first, then this render)::

    python -m bench.mode_table --models mlp-100k --datasets mnist --kinds underfit,overfit \\
        --seeds 0,1,2,3,4 --results bench/results/mode_seedseq/mode.json
    python -m bench.mode_seedseq

writes ``bench/results/mode_seedseq/compare.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS
from deepscope.report import markdown_table

OLD = RESULTS / "mode.json"
NEW = RESULTS / "mode_seedseq" / "mode.json"
BASELINES = ("random", "random-label", "failing", "deepgini", "mode")


def _runs(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text())["runs"]


def _metrics(rec: dict[str, Any]) -> dict[str, float]:
    h = rec["history"]
    return {"@2k": 100 * h[1]["test_label_acc"],
            "mean": 100 * float(np.mean([r["test_label_acc"] for r in h[1:]])),
            "end model": 100 * h[-1]["test_model_acc"]}


def _ci(d: np.ndarray) -> str:
    if len(d) < 2:
        return f"{d.mean():+.1f} (n={len(d)})"
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}] (n={len(d)})"


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    """Markdown: per strategy and metric, old vs new, and auto's lead over each baseline."""
    keys = sorted(set(old) & set(new))
    if not keys:
        raise SystemExit("no run is in both stores: run bench.mode_table with --results first")
    same_bug = all(old[k]["before"] == new[k]["before"] for k in keys)
    strategies = sorted({old[k]["strategy"] for k in keys})
    rows = []
    for strategy in strategies:
        ks = [k for k in keys if old[k]["strategy"] == strategy]
        row: dict[str, Any] = {"strategy": strategy, "runs": len(ks)}
        for metric in ("@2k", "mean", "end model"):
            o = np.array([_metrics(old[k])[metric] for k in ks])
            n = np.array([_metrics(new[k])[metric] for k in ks])
            row[f"{metric} old"] = f"{o.mean():.1f}"
            row[f"{metric} new"] = f"{n.mean():.1f}"
            row[f"{metric} new−old"] = _ci(n - o)
        rows.append(row)
    lead = []
    for base in BASELINES:
        row = {"auto minus": base}
        for tag, store in (("old", old), ("new", new)):
            for metric in ("@2k", "mean"):
                d = []
                for k in keys:
                    if store[k]["strategy"] != "auto":
                        continue
                    other = k.rsplit("/", 1)[0] + "/" + base
                    if other in store:
                        d.append(_metrics(store[k])[metric] - _metrics(store[other])[metric])
                row[f"{metric} {tag}"] = _ci(np.array(d)) if d else "–"
        lead.append(row)
    cells = sorted({old[k]["cell"] for k in keys})
    root = RESULTS.parent.parent
    return "\n".join([
        "# MODE cells before and after SeedSequence seeds", "",
        f"Produced by `python -m bench.mode_seedseq` from `{OLD.relative_to(root)}` "
        f"(older code) and `{NEW.relative_to(root)}` (current code, same command "
        "options; see the module docstring).", "",
        f"Cells: {', '.join(cells)}; {len(keys)} runs present in both. The buggy model before "
        f"repair is {'identical' if same_bug else 'NOT identical'} in every run (same seeds, "
        "same training code): only the repair's random draws differ.", "",
        "Buggy-label test accuracy (%) after the first round (@2k) and mean over rounds, and "
        "model test accuracy at the end; new−old is the paired difference with a 95 % t "
        "interval over runs (cells × seeds).", "",
        markdown_table(rows),
        "`auto`'s lead over each baseline (points, paired per run), in the old and new store:",
        "", markdown_table(lead)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=OLD)
    parser.add_argument("--new", type=Path, default=NEW)
    args = parser.parse_args()
    text = compare(_runs(args.old), _runs(args.new))
    out = args.new.parent / "compare.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
