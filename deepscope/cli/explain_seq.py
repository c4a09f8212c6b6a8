"""``deepscope explain`` on sequence data: one byte decision of a tagger, or one sentence.

``deepscope explain MODEL --dataset function-starts --method M --index I [--position P]``
explains the tagger's decision at byte ``P`` of window ``I`` (default: its first predicted
function start) from the 41-byte window around it; ``--dataset sst2 --index I`` explains the
text model's decision on sentence ``I``. Both write the explanation (``.npz``, with the
explained ids, tokens and position in its extras), a PNG view and an HTML view.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from deepscope import explain, models
from deepscope.audit.sequence_explain import (
    SequenceExplanation,
    explain_position,
    explain_sentence,
)
from deepscope.cli._common import console, print_json, save_figure
from deepscope.errors import InputError

#: LEMNA's window around an explained byte
WIDTH = 41


@dataclasses.dataclass(frozen=True)
class SequenceRequest:
    """What to explain and where to write it (the options of ``deepscope explain``)."""

    method: str
    index: int | None
    position: int | None
    target: int | None
    k: int
    budget: int
    split: str
    seed: int
    out: Path
    png: Path
    html: Path
    overwrite: bool


def _first_start(model: Any, row: np.ndarray) -> int:
    import torch

    pred = models.predict_logits(model, torch.from_numpy(row[None])).argmax(-1)[0].numpy()
    starts = np.flatnonzero((pred == 1) & (row != 0))
    if not len(starts):
        raise InputError("the model predicts no function start in this window; pass "
                         "--position P to explain another byte")
    return int(starts[0])


def compute(ckpt: models.Checkpoint, ds: Any, req: SequenceRequest, *, progress: bool
            ) -> SequenceExplanation:
    """Explain the requested decision (bytes for per-position data, words for text)."""
    n = len(ds)
    if req.index is None:
        raise InputError(f"--index is required for sequence data: the window or sentence to "
                         f"explain, in 0..{n - 1}")
    if not 0 <= req.index < n:
        raise InputError(f"--index must be in 0..{n - 1} ({req.split} split), got {req.index}")
    if req.target is not None and not 0 <= req.target < ds.num_classes:
        raise InputError(f"--class must be in [0, {ds.num_classes}), got {req.target}")
    row = ds.x[req.index].numpy()
    common = {"method": req.method, "target": req.target, "budget": req.budget,
              "seed": req.seed, "progress": progress}
    if ds.per_position:
        p = _first_start(ckpt.model, row) if req.position is None else req.position
        if not 0 <= p < len(row):
            raise InputError(f"--position must be in 0..{len(row) - 1}, got {p}")
        return explain_position(ckpt.model, row, p, width=WIDTH,
                                label=int(ds.y[req.index, p]), **common)
    if req.position is not None:
        raise InputError("--position is for per-position data (function-starts); a sentence "
                         "is explained as a whole")
    if ds.vocab is None:
        raise InputError("sequence explanations need bytes (function-starts) or a text dataset "
                         "with a vocabulary (sst2)")
    return explain_sentence(ckpt.model, row, ds.vocab.tokens, label=int(ds.y[req.index]),
                            **common)


def _feature_names(se: SequenceExplanation, top: np.ndarray) -> list[str]:
    if se.kind == "words":
        return [se.tokens[int(j)] for j in top]
    return [f"byte {se.offset + int(j)}: " + (f"{int(se.ids[j]) - 1:02x}" if se.ids[j] else "··")
            for j in top]


def run(ckpt: models.Checkpoint, ds: Any, req: SequenceRequest, *, checkpoint: Path,
        dataset: str, json_out: bool, quiet: bool) -> None:
    """Compute, write the ``.npz``, PNG and HTML views, and print a summary."""
    from deepscope.report import explanations as rx

    se = compute(ckpt, ds, req, progress=not quiet and not json_out)
    k = min(req.k, len(se.ids))
    top = se.explanation.top_features(k)[0]
    source = {"dataset": dataset, "split": req.split, "index": req.index, **se.to_dict()}
    source.pop("attributions")
    expl = dataclasses.replace(se.explanation, extras={**se.explanation.extras, **source})
    title = f"{req.method} on {ckpt.arch}: {dataset} {req.split} #{req.index}"
    page = rx.sequence_page(se, title, subtitle=str(checkpoint))
    # written last, once everything is computed (each atomic)
    save_figure(rx.sequence_figure(se), req.png)
    page.write(req.html)
    explain.save_npz(expl, req.out, overwrite=req.overwrite)
    names = _feature_names(se, top)
    summary = {"checkpoint": str(checkpoint), **source, "k": k,
               "top_features": [int(se.offset + j) if se.kind == "bytes" else int(j)
                                for j in top],
               "top_feature_names": names, "npz": str(req.out), "png": str(req.png),
               "html": str(req.html)}
    if json_out:
        print_json(summary)
        return
    what = (f"byte {se.offset + int(se.position)}" if se.kind == "bytes" else "the sentence")
    table = Table(title=f"{title}: class {se.target} at {what} (p = {se.proba:.3f})")
    table.add_column("rank")
    table.add_column("feature")
    table.add_column("attribution")
    for rank, (j, name) in enumerate(zip(top, names, strict=True), start=1):
        table.add_row(str(rank), name, f"{se.attributions[j]:+.4g}")
    console.print(table)
    console.print(f"{se.seconds:.1f} s; explanation: {req.out}; views: {req.png}, {req.html}")
