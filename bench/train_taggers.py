"""Function-start taggers on held-out libraries: per-byte F1 against the issue-12 target.

The rows of ``bench/train_zoo.py --dataset function-starts`` (this module does the work). Each
tagger is trained exactly as ``deepscope train --dataset function-starts --arch NAME`` does:
the architecture's recommended settings (``zoo.training_defaults``), the train split minus a
validation split of whole libraries (``data.group_split``, seed 0), the best epoch by validation
F1, then the F1-optimal decision threshold chosen on that validation split and folded into the
head (:func:`deepscope.models.tagging.calibrate_threshold`); the test split (held-out
libraries) is only evaluated. Target: F1 >= 0.98 for the best model (Shin et al. 2015 report
98-99 % for gcc x86-64 with a bi-RNN); training <= 10 minutes on 2 cores.

Writes ``bench/results/train_zoo_function_starts.md`` and ``.json`` (rows of other models are
kept) and caches the checkpoints in ``bench/.cache/zoo``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import CACHE, RESULTS, machine, write_text
from deepscope import data, models
from deepscope.data import function_starts
from deepscope.models import zoo

DATASET = "function-starts"
TARGET_F1 = 0.98
TARGET_SECONDS = 600
OUT = RESULTS / "train_zoo_function_starts.md"
COLUMNS = ("model", "weights", "epochs", "s/epoch", "train s", "threshold", "val F1",
           "test precision", "test recall", "test F1", "F1 >= 0.98?")


def taggers() -> list[str]:
    """The zoo's function-start taggers."""
    return [n for n in zoo.names() if zoo.spec(n).family == "tagger"]


def train(arch: str, *, seed: int = 0, epochs: int | None = None, progress: bool = False
          ) -> dict[str, Any]:
    """Train ``arch`` as ``deepscope train`` does; return its benchmark row."""
    recipe = zoo.training_defaults(arch)
    if epochs is not None:
        recipe = type(recipe)(**{**recipe.to_dict(), "epochs": epochs,
                                 "class_weight": recipe.class_weight})
    parts = models.training_split(lambda s: data.load(DATASET, s, progress=progress),
                                  dataset=DATASET, seed=seed, val_fraction=recipe.val_fraction)
    model = zoo.build(arch, num_classes=2, vocab_size=int(parts.train.info["vocab_size"]),
                      seed=seed)
    history: list[models.EpochStats] = []
    start = time.perf_counter()
    models.fit(model, parts.train, **recipe.fit_kwargs(), seed=seed, val=parts.validation,
               history=history, progress=progress)
    decision = models.tagging.calibrate_threshold(model, parts.validation)
    seconds = time.perf_counter() - start
    ev = models.evaluate(model, parts.test)
    CACHE.joinpath("zoo").mkdir(parents=True, exist_ok=True)
    path = models.save_checkpoint(
        CACHE / "zoo" / f"{arch}__{DATASET}__seed{seed}.pt", model, arch=arch,
        classes=parts.train.classes, config={"num_classes": 2, "vocab_size": 257},
        metadata={"dataset": DATASET, "seconds": round(seconds, 1), "test_f1": ev.f1,
                  "decision": decision.to_dict(), "settings": recipe.to_dict(),
                  models.provenance.METADATA_KEY: parts.record.to_dict()},
        overwrite=True)
    return {
        "model": arch, "seed": seed, "weights": zoo.count_parameters(model),
        "epochs_run": len(history), "epochs_max": recipe.epochs,
        "seconds_per_epoch": round(sum(h.seconds for h in history) / max(len(history), 1), 1),
        "seconds_total": round(seconds, 1), "threads": torch.get_num_threads(),
        "val_f1_per_epoch": [h.val_f1 for h in history],
        "decision": decision.to_dict(),
        "test_precision": ev.precision, "test_recall": ev.recall, "test_f1": ev.f1,
        "test_accuracy": ev.accuracy, "settings": recipe.to_dict(),
        "splits": {"train": len(parts.train), "validation": len(parts.validation),
                   "test": len(parts.test)},
        "validation_libraries": sorted(set(parts.validation.groups.tolist())),
        "checkpoint": str(path),
    }


def _fmt(r: dict[str, Any]) -> list[str]:
    return [r["model"], f"{r['weights']:,}", f"{r['epochs_run']}/{r['epochs_max']}",
            f"{r['seconds_per_epoch']:.0f}", f"{r['seconds_total']:.0f}",
            f"{r['decision']['threshold']:.3f}", f"{r['decision']['f1_after']:.4f}",
            f"{r['test_precision']:.4f}", f"{r['test_recall']:.4f}", f"**{r['test_f1']:.4f}**",
            "yes" if r["test_f1"] >= TARGET_F1 else "no"]


def _sizes(manifest: dict[str, Any]) -> list[str]:
    lines = ["| split | archives | windows | functions | bytes |", "|---|---|---|---|---|"]
    for split, s in manifest["splits"].items():
        lines.append(f"| {split} | {s['archives']} | {s['windows']:,} | {s['functions']:,} | "
                     f"{s['bytes']:,} |")
    return lines


def markdown(rows: list[dict[str, Any]], manifest: dict[str, Any], command: str) -> str:
    """The result table, the dataset's size per split and how it was produced."""
    held = sorted(s["name"] for s in manifest["sources"] if s["split"] == "test")
    val = rows[0]["validation_libraries"] if rows else []
    lines = [
        "# Function-start taggers (per-byte F1 on held-out libraries)", "",
        f"Produced by `{command}`. Per-byte precision / recall / F1 of the function-start class "
        "on the test split (held-out libraries, padding excluded), trained as `deepscope train "
        "--dataset function-starts --arch NAME` does: recommended settings, best epoch by "
        "validation F1 on whole libraries of the train split "
        f"({', '.join(val)}), decision threshold chosen on that validation split and folded "
        f"into the head. Target: F1 >= {TARGET_F1} for the best model, training <= "
        f"{TARGET_SECONDS // 60} min on 2 cores. `train s` includes the validation passes and "
        "the calibration.", "",
        "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|",
        *("| " + " | ".join(_fmt(r)) + " |" for r in rows), "",
        "Dataset (`deepscope data build function-starts`, build "
        f"{manifest.get('build_seconds', '?')} s; held out: {', '.join(held)}):", "",
        *_sizes(manifest), "", f"Machine: {machine()}.", "",
    ]
    return "\n".join(lines)


def _previous(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    try:
        previous = json.loads(out.with_suffix(".json").read_text())["rows"]
    except (OSError, ValueError, KeyError):
        previous = []
    return {(r["model"], r["seed"]): r for r in previous}


def run(only: list[str] | None, *, seed: int, epochs: int | None, progress: bool,
        command: str, out: Path = OUT) -> Path:
    """Train the taggers (``only`` or all), merge with earlier rows, write the tables."""
    names = only or taggers()
    unknown = sorted(set(names) - set(taggers()))
    if unknown:
        raise SystemExit(f"not function-start taggers: {unknown}; choose from {taggers()}")
    data.load(DATASET, "train", progress=progress)  # builds the dataset if needed
    current = function_starts.current_build()
    assert current is not None
    manifest = current[1]
    for arch in names:
        row = train(arch, seed=seed, epochs=epochs, progress=progress)
        rows = _previous(out)  # read now: another run may have added rows meanwhile
        rows[(arch, seed)] = row
        print(" | ".join(_fmt(row)), flush=True)
        ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[1], taggers().index(k[0])))]
        write_text(out.with_suffix(".json"), json.dumps(
            {"command": command, "machine": machine(), "splits": manifest["splits"],
             "rows": ordered}, indent=2))
        write_text(out, markdown(ordered, manifest, command))
    return out
