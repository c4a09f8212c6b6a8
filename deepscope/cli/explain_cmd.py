"""``deepscope explain``: explain a checkpoint's decisions for one class."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer
from rich.table import Table

from deepscope import explain
from deepscope.cli import _ray
from deepscope.cli._common import console, print_json, save_figure, user_errors
from deepscope.cli.model_cmd import load_model_and_data, refuse_existing
from deepscope.errors import InputError

#: rows of the console table (every explained input is in the .npz and the JSON)
TABLE_ROWS = 10


def check_grid(k: int, cell: int, input_shape: tuple[int, ...]) -> int:
    """Validate ``--cell`` against the image size and ``--k`` against the number of cells;
    return the number of features (cells)."""
    h, w = (int(v) for v in input_shape[-2:])
    if not 1 <= cell <= min(h, w):
        raise InputError(f"--cell must be in 1..{min(h, w)} (the side of the {h}×{w} images), "
                         f"got {cell}")
    n_features = -(-h // cell) * -(-w // cell)
    if not 1 <= k <= n_features:
        raise InputError(f"--k must be in 1..{n_features} (the number of {cell}×{cell} cells of "
                         f"a {h}×{w} image), got {k}; lower --k or --cell")
    return n_features


@user_errors
def explain_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `deepscope train`."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset the model was trained on."),
    method: str = typer.Option("dmm-men", "--method", "-m",
                               help="Explainer: " + ", ".join(explain.names()) + "."),
    target: int | None = typer.Option(
        None, "--class", "-c",
        help="Class whose decisions to explain (required for images; for sequences the "
             "model's decision by default)."),
    k: int = typer.Option(10, min=1, help="Number of top features to report and draw."),
    n: int = typer.Option(20, min=1, help="Number of inputs of the class to explain."),
    cell: int = typer.Option(2, min=1, help="Features are cell×cell pixel squares."),
    split: str = typer.Option("test", help="Split to take inputs from."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(Path("explanations.npz"), "--out", "-o", help="Output .npz file."),
    overlays: Path | None = typer.Option(None, help="Overlay PNG (default: next to --out)."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    ray: str | None = _ray.ray_option(),
    workers: int = _ray.workers_option(),
    index: int | None = typer.Option(
        None, help="Sequences: the window (function-starts) or sentence (sst2) to explain."),
    position: int | None = typer.Option(
        None, help="function-starts: the byte whose decision to explain (default: the first "
                   "predicted function start), from the 41-byte window around it."),
    budget: int = typer.Option(500, min=1, help="Sequences: model queries per explanation."),
) -> None:
    """Explain why the model assigns inputs to a class; write an .npz and overlay PNGs.

    On sequence data (function-starts, sst2) one decision is explained (--index, --position)
    and the views are a PNG and an HTML page (hex view with disassembly, or highlighted words).
    """
    from deepscope.explain import compare
    from deepscope.report import explanations as rx

    if method not in explain.names():
        raise InputError(f"--method must be one of {', '.join(explain.names())}; got {method!r}")
    if out.suffix != ".npz":
        raise InputError(f"--out must name an .npz file, got {out.name!r}")
    _ray.check(ray)
    overlays = overlays or out.with_suffix(".png")
    refuse_existing(out, overlays, overwrite=overwrite)
    ckpt, ds = load_model_and_data(checkpoint, dataset, split,
                                   progress=not quiet and not json_out)
    if ds.modality == "sequence":
        from deepscope.cli import explain_seq

        if ray is not None:
            raise InputError("--ray spreads a batch of image explanations over workers; a "
                             "sequence explanation is one decision, so drop --ray")

        req = explain_seq.SequenceRequest(
            method=method, index=index, position=position, target=target, k=k, budget=budget,
            split=split, seed=seed, out=out, png=overlays, html=out.with_suffix(".html"),
            overwrite=overwrite)
        refuse_existing(req.html, overwrite=overwrite)
        explain_seq.run(ckpt, ds, req, checkpoint=checkpoint, dataset=dataset,
                        json_out=json_out, quiet=quiet)
        return
    if target is None:
        raise InputError("--class is required for image data: the class whose decisions to "
                         "explain")
    if index is not None or position is not None:
        raise InputError("--index and --position are for sequence data (function-starts, "
                         "sst2); images are explained with --class and --n")
    if not 0 <= target < ds.num_classes:
        raise InputError(f"--class must be in [0, {ds.num_classes}), got {target}")
    check_grid(k, cell, tuple(ds.input_shape))
    idx = compare.positives(ckpt.model, ds.x, ds.y, target, n)
    x = ds.x[idx]
    if ray is None:
        result = compare.side_by_side(ckpt.model, x, target, [method], cell=cell, seed=seed,
                                      progress=not quiet and not json_out)
    else:
        result = _ray.side_by_side(checkpoint, ckpt.model, x, target, method, cell=cell,
                                   seed=seed, address=ray, workers=workers, out=out,
                                   progress=not quiet and not json_out)
    (run,) = result.runs
    source = {"dataset": dataset, "split": split, "dataset_indices": idx.tolist()}
    explanation = dataclasses.replace(run.explanation,
                                      extras={**run.explanation.extras, **source})
    top = explanation.top_features(k)
    fig = rx.overlay_grid(result, k, n_show=min(6, len(x)))
    # written last, once everything is computed: the overlays, then the .npz (both atomic)
    save_figure(fig, overlays)
    explain.save_npz(explanation, out, overwrite=overwrite)
    if ray is not None:
        _ray.done(_ray.shards_dir(out))
    summary = {"checkpoint": str(checkpoint), "dataset": dataset, "split": split,
               "class": target, "class_name": str(ckpt.classes[target]), "k": k,
               "n_requested": n, "n": len(x), "indices": idx.tolist(), **run.to_dict(),
               "top_features": [list(map(int, row)) for row in top],
               "npz": str(out), "overlays": str(overlays)}
    if json_out:
        print_json(summary)
        return
    shown = min(TABLE_ROWS, len(x))
    table = Table(title=f"{method} on {ckpt.arch}: class {ckpt.classes[target]} "
                        f"({len(x)} inputs, {cell}×{cell} cells)",
                  caption=None if shown == len(x) else
                  f"the first {shown} of {len(x)} inputs; all {len(x)} are in {out}")
    table.add_column(f"input ({split} index)")
    table.add_column(f"top-{k} features (most supporting first)")
    for i, row in enumerate(top[:shown]):
        table.add_row(str(int(idx[i])), json.dumps(list(map(int, row))))
    console.print(table)
    if len(x) < n:
        console.print(f"explained {len(x)} of the {n} requested inputs: the model assigns only "
                      f"{len(x)} {split} inputs of class {target} to it (only those are "
                      "explained)")
    console.print(f"{run.seconds:.1f} s; explanations: {out}; overlays: {overlays}")
