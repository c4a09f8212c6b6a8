"""``--ray ADDRESS|local`` and ``--workers N`` of ``explain``, ``attack`` and ``evaluate``.

The commands compute exactly what they compute locally (:mod:`deepscope.distributed` gives the
local result); the workers receive the checkpoint file's bytes and load them with the safe
loader. Finished shards go to ``<out>.shards/`` next to the output file while the command runs,
so a re-run of an interrupted command resumes from them; the folder is removed once the output
is written.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer

from deepscope import distributed, explain
from deepscope.explain import compare

RAY_HELP = ("Run on Ray: 'local' (a Ray on this machine), 'auto' (RAY_ADDRESS or the cluster "
            "`ray start` runs) or HOST:PORT. Same results as without --ray.")
WORKERS_HELP = "Ray workers (one CPU each) with --ray."


def ray_option() -> Any:
    """The ``--ray`` option."""
    return typer.Option(None, "--ray", metavar="ADDRESS|local", help=RAY_HELP)


def workers_option() -> Any:
    """The ``--workers`` option."""
    return typer.Option(2, "--workers", min=1, help=WORKERS_HELP)


def check(address: str | None) -> None:
    """Refuse a malformed or unreachable ``--ray`` address before any work is done."""
    if address is not None:
        distributed.probe(distributed.check_address(address))


def shards_dir(out: Path) -> Path:
    """Where the finished shards of the command writing ``out`` are kept until it is written."""
    return out.with_name(out.name + ".shards")


def done(shards: Path) -> None:
    """Remove the shard folder once the command's output is written."""
    shutil.rmtree(shards, ignore_errors=True)


def side_by_side(checkpoint: Path, model: torch.nn.Module, x: torch.Tensor, target: int,
                 method: str, *, cell: int, seed: int, address: str, workers: int,
                 out: Path, progress: bool) -> compare.Comparison:
    """:func:`deepscope.explain.compare.side_by_side` for one method, explained on Ray.

    Fitting (DMM-MEN's mixture) runs here, on the driver; ``explain`` runs on the workers.
    """
    xs = np.ascontiguousarray(x.detach().cpu().numpy())
    explainer = compare.build_explainer(method, model, cell=cell, seed=seed, progress=progress)
    start = time.perf_counter()
    explainer.fit(xs, explain.model_proba(model), target=target)
    explanation = distributed.explain(explainer, xs, address=address, workers=workers,
                                      model=checkpoint, out_dir=shards_dir(out),
                                      progress=progress)
    seconds = time.perf_counter() - start
    queries = explainer.black_box_.queries + int(explanation.extras.get("explain_queries", 0))
    run = compare.ExplainRun(method, explanation, seconds, queries)
    return compare.Comparison(target=int(target), x=xs, runs=(run,), cell=cell, seed=seed,
                              n_fit=len(xs))
