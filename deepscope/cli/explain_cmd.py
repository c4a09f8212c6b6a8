"""``deepscope explain``: explain a checkpoint's decisions for one class."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from deepscope import explain
from deepscope.cli._common import console, print_json, user_errors
from deepscope.cli.model_cmd import load_model_and_data, refuse_existing
from deepscope.errors import InputError


@user_errors
def explain_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `deepscope train`."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset the model was trained on."),
    method: str = typer.Option("dmm-men", "--method", "-m",
                               help="Explainer: " + ", ".join(explain.names()) + "."),
    target: int = typer.Option(..., "--class", "-c", help="Class whose decisions to explain."),
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
) -> None:
    """Explain why the model assigns inputs to a class; write an .npz and overlay PNGs."""
    from deepscope.explain import compare
    from deepscope.report import explanations as rx

    if out.suffix != ".npz":
        raise InputError(f"--out must name an .npz file, got {out.name!r}")
    overlays = overlays or out.with_suffix(".png")
    refuse_existing(out, overlays, overwrite=overwrite)
    ckpt, ds = load_model_and_data(checkpoint, dataset, split,
                                   progress=not quiet and not json_out)
    if not 0 <= target < ds.num_classes:
        raise InputError(f"--class must be in [0, {ds.num_classes}), got {target}")
    idx = compare.positives(ckpt.model, ds.x, ds.y, target, n)
    x = ds.x[idx]
    result = compare.side_by_side(ckpt.model, x, target, [method], cell=cell, seed=seed,
                                  progress=not quiet and not json_out)
    (run,) = result.runs
    explain.save_npz(run.explanation, out, overwrite=overwrite)  # atomic; folders created
    fig = rx.overlay_grid(result, k, n_show=min(6, len(x)))
    overlays.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(overlays, dpi=120, bbox_inches="tight")
    top = run.explanation.top_features(k)
    summary = {"checkpoint": str(checkpoint), "dataset": dataset, "class": target,
               "class_name": str(ckpt.classes[target]), "k": k, "n": len(x),
               "indices": idx.tolist(), **run.to_dict(),
               "top_features": [list(map(int, row)) for row in top],
               "npz": str(out), "overlays": str(overlays)}
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"{method} on {ckpt.arch}: class {ckpt.classes[target]} "
                        f"({len(x)} inputs, {cell}×{cell} cells)")
    table.add_column("input")
    table.add_column(f"top-{k} features (most supporting first)")
    for i, row in enumerate(top[:10]):
        table.add_row(str(int(idx[i])), json.dumps(list(map(int, row))))
    console.print(table)
    console.print(f"{run.seconds:.1f} s; explanations: {out}; overlays: {overlays}")
