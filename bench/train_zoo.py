"""Train the zoo on real data and tabulate test accuracy against the targets.

Every 28×28 zoo model on MNIST and Fashion-MNIST (train split minus a seeded 10 % validation split
for early stopping; official test split), the face model on AT&T faces, and with ``--cifar`` the
CIFAR-10 models for a few epochs on the JPEG copy of CIFAR-10; with ``--text`` the text
classifiers on SST-2 (GLUE dev as the test split) and UCI sentiment (train minus a seeded 10 %
validation split; write them to their own table with ``--out``). Targets: MNIST CNNs >= 99.0 %,
MNIST MLPs >= 98.0 %, Fashion-MNIST CNNs >= 91.0 %, SST-2 >= 83 %, UCI >= 80 %.

Writes ``bench/results/train_zoo.md`` and ``.json`` (rows of earlier runs for other pairs are
kept, so ``--only``/``--dataset`` runs update the table) and caches every trained checkpoint for
other benchmarks (see :mod:`bench.zoo`). A cached checkpoint trained with the current
recipe (e.g. by another benchmark's ``get_trained``) is reused and its recorded figures are
reported, unless ``--retrain`` (or ``--epochs``) is given.

Usage::

    DEEPSCOPE_DATA=/path/to/data .venv/bin/python -m bench.train_zoo            # the full run
    .venv/bin/python -m bench.train_zoo --only cnn-8k --dataset fashion-mnist   # one pair
    .venv/bin/python -m bench.train_zoo --dataset function-starts   # the byte taggers (F1)
    .venv/bin/python -m bench.train_zoo --text --out bench/results/train_zoo_text.md

``--dataset function-starts`` trains the function-start taggers instead (per-byte F1 on
held-out libraries, seconds per epoch, the dataset's size per split; see
:mod:`bench.train_taggers`) and writes ``bench/results/train_zoo_function_starts.md``.
``--text`` adds the text classifiers (SST-2, UCI sentiment).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench import train_taggers
from bench import zoo as zc
from bench.common import RESULTS, write_text
from deepscope.models import zoo

COLUMNS = ("model", "dataset", "weights", "train/val/test", "epochs run", "s/epoch", "test acc",
           "target", "met?")


def _plan(only: list[str] | None, dataset: str | None, cifar: bool, text: bool = False
          ) -> list[tuple[str, str]]:
    text_jobs = [(a, d) for d in zc.TEXT_DATASETS for a in zc.TEXT_ARCHS]
    if text and not only and not dataset:
        return text_jobs
    # MNIST first, then the face model (both used by the attack and AmI benchmarks)
    jobs = [(a, "mnist") for a in zc.DIGIT_ARCHS]
    jobs.append((zc.FACE_ARCH, zc.FACE_DATASET))
    jobs += [(a, d) for d in zc.DIGIT_DATASETS if d != "mnist" for a in zc.DIGIT_ARCHS]
    if cifar or dataset == zc.CIFAR_DATASET or (only and set(only) & set(zc.CIFAR_ARCHS)):
        jobs += [(a, zc.CIFAR_DATASET) for a in zc.CIFAR_ARCHS]
    if text or dataset in zc.TEXT_DATASETS or (only and set(only) & set(zc.TEXT_ARCHS)):
        jobs += text_jobs
    if only:
        unknown = sorted(set(only) - set(zoo.names()))
        if unknown:
            raise SystemExit(f"unknown model(s) {unknown}; choose from {zoo.names()}")
        jobs = [j for j in jobs if j[0] in only]
    if dataset:
        jobs = [j for j in jobs if j[1] == dataset]
    if not jobs:
        raise SystemExit("nothing to train: no recipe matches --only/--dataset")
    return jobs


def _row(arch: str, dataset: str, seed: int, model: torch.nn.Module, meta: dict[str, Any],
         source: str) -> dict[str, Any]:
    tgt = zc.target(arch, dataset)
    vals = [h["val_accuracy"] for h in meta["history"] if h["val_accuracy"] is not None]
    return {
        "model": arch,
        "dataset": dataset,
        "seed": seed,
        "weights": zoo.count_parameters(model),
        "sizes": meta.get("sizes"),
        "epochs_run": meta["epochs_run"],
        "epochs_max": meta["recipe"]["epochs"],
        "seconds_per_epoch": round(meta["seconds_per_epoch"], 2),
        "seconds_total": round(meta["seconds"], 1),
        "threads": meta.get("threads"),
        "test_accuracy": meta["test_accuracy"],
        "best_val_accuracy": max(vals, default=None),
        "target": tgt,
        "met": None if tgt is None else bool(meta["test_accuracy"] >= tgt),
        "recipe": meta["recipe"],
        "source": source,
    }


def _fmt(row: dict[str, Any]) -> list[str]:
    tgt = row["target"]
    return [
        row["model"],
        row["dataset"],
        f"{row['weights']:,}",
        "/".join(f"{v:,}" for v in row["sizes"].values()) if row.get("sizes") else "—",
        f"{row['epochs_run']}/{row['epochs_max']}",
        f"{row['seconds_per_epoch']:.1f}"
        + (f" ({row['threads']} thr)" if row.get("threads") not in (None, 2) else ""),
        f"{100 * row['test_accuracy']:.2f} %",
        "—" if tgt is None else f">= {100 * tgt:.1f} %",
        "—" if row["met"] is None else ("yes" if row["met"] else "**no**"),
    ]


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Zoo training benchmark",
        "",
        "Produced by `bench/train_zoo.py`. MNIST / Fashion-MNIST: official train split minus a "
        "seeded stratified 10 % validation split (early stopping, best epoch restored), tested "
        "on the official 10,000 test images. AT&T faces: 8 images per subject for training "
        "(fixed epochs, flips/shifts/brightness augmentation), the other 2 per subject (80) for "
        "testing. CIFAR-10 (if present) uses the lossy JPEG copy, so its numbers are not "
        "comparable with published CIFAR-10 results. SST-2: GLUE train (67,349 phrases) minus "
        "a seeded 10 % validation split, tested on the GLUE dev set (872 sentences); UCI "
        "sentiment: the seeded 1,600 / 400 split, minus 10 % of train for validation. "
        "Seconds per epoch include validation and "
        "were measured on a shared 2-core CPU, so they vary with the machine's load.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_fmt(r)) + " |" for r in rows]
    lines += [
        "",
        f"Recipes (Adam, per-step cosine schedule): see `bench/zoo.py`. torch "
        f"{meta['torch']}, {meta['threads']} threads, {meta['machine']}; last run "
        f"{meta['finished']}.",
        "",
    ]
    return "\n".join(lines)


def _write(rows_by_key: dict[tuple[str, str, int], dict[str, Any]], out: Path) -> None:
    order = {pair: i for i, pair in enumerate(zc.pairs())}
    rows = sorted(rows_by_key.values(),
                  key=lambda r: (r["seed"], order.get((r["model"], r["dataset"]), 999)))
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_text(out.with_suffix(".json"), json.dumps({"meta": meta, "rows": rows}, indent=2))
    write_text(out.with_suffix(".md"), _markdown(rows, meta))


def _previous(out: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    try:
        rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {(r["model"], r["dataset"], r["seed"]): r for r in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="train only this zoo model (repeatable, or comma-separated)")
    parser.add_argument("--dataset", choices=[*zc.DIGIT_DATASETS, zc.FACE_DATASET,
                                              zc.CIFAR_DATASET, *zc.TEXT_DATASETS,
                                              train_taggers.DATASET])
    parser.add_argument("--epochs", type=int, help="override every recipe's maximum epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cifar", action="store_true", help="also train the CIFAR-10 models")
    parser.add_argument("--text", action="store_true",
                        help="the text classifiers on SST-2 and UCI sentiment (alone, unless "
                             "--only/--dataset say otherwise)")
    parser.add_argument("--retrain", action="store_true",
                        help="train even when the cache holds a model made with the same recipe")
    parser.add_argument("--progress", action="store_true", help="show per-epoch progress bars")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_zoo.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    only = [n for item in args.only for n in item.split(",")] if args.only else None
    if args.dataset == train_taggers.DATASET:
        command = "python -m bench.train_zoo " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
        out = train_taggers.run(only, seed=args.seed, epochs=args.epochs,
                                progress=args.progress, command=command.strip())
        print(out.read_text(), flush=True)
        return 0
    jobs = _plan(only, args.dataset, args.cifar, args.text)
    print(f"training {len(jobs)} model(s): " + ", ".join(f"{a}/{d}" for a, d in jobs), flush=True)
    rows = _previous(args.out)
    start = time.perf_counter()
    for arch, dataset in jobs:
        with zc.training_lock(arch, dataset, args.seed):
            reuse = not (args.retrain or args.epochs)
            ckpt = zc.cached_checkpoint(arch, dataset, args.seed) if reuse else None
            if ckpt is not None:
                model, meta, path, source = ckpt.model, dict(ckpt.metadata), ckpt.path, "cache"
            else:
                result = zc.train(arch, dataset, seed=args.seed, epochs=args.epochs,
                                  progress=args.progress)
                path = zc.save(result)
                model, meta, source = result.model, result.metadata(), "trained"
        row = _row(arch, dataset, args.seed, model, meta, source)
        rows[(arch, dataset, args.seed)] = row
        _write(rows, args.out)
        print(" | ".join(_fmt(row)) + f" | {row['seconds_total']:.0f}s {source} -> {path}",
              flush=True)
    print(f"done in {time.perf_counter() - start:.0f}s; table: {args.out}", flush=True)
    print(args.out.read_text(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
