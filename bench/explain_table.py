"""DMM-MEN vs LIME vs KernelSHAP on four settings: function starts, SST-2, MNIST, Fashion-MNIST.

One run explains, in each setting of :mod:`bench.explain_settings`, the same inputs with every
explainer row of :mod:`bench.explain_run` (same query budget per explained input; LIME and
KernelSHAP also at their defaults; random features; a white-box reference), scores them with
LEMNA's sequence tests or the image tests (shares with bootstrap CIs, paired differences,
win / tie / loss), adds the ground-truth test on a piecewise-linear black box, and writes
``bench/results/explain.json`` (the run), ``explain.md`` and the PNGs under
``bench/results/explain/`` (hex views with disassembly, highlighted sentences, overlays).

    nohup .venv/bin/python -m bench.explain_table > bench/results/explain.log 2>&1 &
    .venv/bin/python -m bench.explain_table --quick          # ~2 min smoke run (own files)
    .venv/bin/python -m bench.explain_table --report-only    # markdown + PNGs from the JSON

``--dmm local|global`` picks DMM-MEN's row from :data:`bench.explain_run.DMM_MEN` (default:
local when DMM-MEN has that mode); ``--out NAME`` writes ``NAME.md`` / ``NAME.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench import explain_groundtruth, explain_pictures, explain_render
from bench.common import RESULTS, command, logger, machine, require_data, set_threads, write_text
from bench.explain_run import (
    BUDGET,
    default_dmm_mode,
    explain_all,
    image_scores,
    rows,
    sequence_scores,
    summarise,
)
from bench.explain_settings import SETTINGS, build

#: explained inputs per setting: full run / --quick
N_FULL = {"function-starts": 200, "sst2": 200, "mnist": 60, "fashion-mnist": 60}
N_QUICK = {"function-starts": 6, "sst2": 6, "mnist": 4, "fashion-mnist": 4}
PICTURES = RESULTS / "explain"


def run_setting(name: str, n: int, args, log) -> dict[str, Any]:
    """Explain, score and summarise one setting."""
    start = time.perf_counter()
    setting = build(name, n, n_classes=args.classes)
    log(f"[{setting.key}] {setting.n_explained} explained inputs in {len(setting.groups)} "
        f"groups ({time.perf_counter() - start:.0f}s to prepare)")
    exps, cost = {}, {}
    for row in rows(setting.modality, args.dmm):
        if args.quick and row.budget == "default":
            continue
        exps[row.name], cost[row.name] = explain_all(setting, row, log)
    scorer = image_scores if setting.modality == "image" else sequence_scores
    scores = {name: scorer(setting, e) for name, e in exps.items()}
    out = {"key": setting.key, "modality": setting.modality,
           "budget": BUDGET[setting.modality], "n_explained": setting.n_explained,
           "info": setting.info, "cost": cost, **summarise(setting, scores),
           "picture_data": explain_pictures.collect(setting, exps),
           "seconds": time.perf_counter() - start}
    log(f"[{setting.key}] done in {out['seconds']:.0f}s: {explain_render.tally(out)}")
    return out


def run_groundtruth(log, n_samples: int, seeds: tuple[int, ...]) -> dict:
    """Top-k precision on the gated ground-truth boxes (:mod:`bench.explain_groundtruth`)."""
    return explain_groundtruth.run(log, n_samples, seeds)


def run(args, log) -> dict[str, Any]:
    """Every measurement; the returned dict is what the JSON holds."""
    start = time.perf_counter()
    sizes = N_QUICK if args.quick else N_FULL
    note = ("local mode: fits the mixture to each input's own perturbations"
            if args.dmm == "local" else
            "global NeurIPS'18 mode: one mixture per group over its inputs and their "
            "budget - 1 perturbed copies each")
    results: dict[str, Any] = {
        "command": command(), "machine": machine(), "dmm_mode": args.dmm, "dmm_note": note,
        "budgets": BUDGET, "quick": args.quick, "settings": {},
        "machine_note": args.machine_note,
    }
    for name in args.settings.split(","):
        results["settings"][name] = run_setting(name, args.n or sizes[name], args, log)
    results["groundtruth"] = run_groundtruth(log, 10 if args.quick else 30,
                                             (0,) if args.quick else (0, 1, 2))
    results["seconds"] = time.perf_counter() - start
    return results


def report(json_path: Path) -> Path:
    """Render ``<name>.md`` and the PNGs from ``<name>.json``."""
    results = json.loads(json_path.read_text())
    prefix = json_path.stem
    pictures = {key: explain_pictures.draw(st["picture_data"], PICTURES, f"{prefix}_{key}")
                for key, st in results["settings"].items()}
    return write_text(json_path.with_suffix(".md"), explain_render.render(results, pictures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~2 min smoke run")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--n", type=int, default=None, help="explained inputs per setting")
    parser.add_argument("--classes", type=int, default=3, help="image classes per setting")
    parser.add_argument("--dmm", choices=("local", "global"), default=default_dmm_mode())
    parser.add_argument("--out", default=None, help="result name (default explain, "
                        "explain_quick with --quick)")
    parser.add_argument("--machine-note", default="2 CPU cores shared with other developers' "
                        "jobs: timings are distorted, quality numbers are not.")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render the markdown and PNGs from the JSON")
    args = parser.parse_args()
    name = args.out or ("explain_quick" if args.quick else "explain")
    json_path = RESULTS / f"{name}.json"
    log = logger()
    if not args.report_only:
        require_data()
        set_threads(1)
        results = run(args, log)
        write_text(json_path, json.dumps(results, indent=1, default=str))
    report(json_path)
    log(f"wrote {json_path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
