"""``deepscope detect``: fit an adversarial-input detector on a checkpoint, then run it.

::

    deepscope detect fit MODEL.pt --dataset att-faces --method ami --out ami.npz
    deepscope detect run ami.npz MODEL.pt --inputs adversarial.npz --json
    deepscope detect run ami.npz MODEL.pt --dataset att-faces --split test
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import typer
from rich.table import Table

from deepscope import attacks, detect
from deepscope.audit.detector_fit import benign_indices, fit_detector
from deepscope.cli._common import console, err_console, print_json, user_errors
from deepscope.cli.attack_cmd import parse_params
from deepscope.cli.model_cmd import load_model_and_data, refuse_existing
from deepscope.errors import InputError
from deepscope.models import load_checkpoint, predict_logits

app = typer.Typer(help="Detect adversarial inputs (AmI, feature squeezing, both).",
                  no_args_is_help=True)


def _subset(n: int, limit: int | None, seed: int) -> torch.Tensor:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order if limit is None else order[:limit]


@app.command("fit")
@user_errors
def fit(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `deepscope train`."),
    dataset: str = typer.Option("att-faces", "--dataset", "-d",
                                help="Dataset of benign inputs (AmI needs attribute boxes)."),
    method: str = typer.Option("ami", "--method", "-m",
                               help=f"One of: {', '.join(detect.names())}."),
    out: Path = typer.Option(..., "--out", "-o", help="Detector file to write (.npz)."),
    target_fpr: float = typer.Option(0.05, min=0.0, max=1.0,
                                     help="False-positive rate on benign calibration inputs."),
    split: str = typer.Option("train", help="Split of benign inputs to fit on."),
    calib_split: str | None = typer.Option(
        None, help="Split to calibrate on (default: a held-out 30% of --split)."),
    limit: int | None = typer.Option(None, min=4, help="Use at most N benign inputs."),
    param: list[str] = typer.Option([], "--param", "-p",
                                    help="Detector parameter key=value (repeatable), e.g. "
                                         "n_pairs=50."),
    seed: int = typer.Option(0, help="Random seed (subset, pairing, calibration split)."),
    overwrite: bool = typer.Option(False, help="Replace an existing detector file."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Fit a detector on the benign inputs the model classifies correctly and save it.

    Runs :func:`deepscope.audit.detector_fit.fit_detector` — the same path and defaults as
    the AmI benchmark (``bench/ami_table.py``).
    """
    if method not in detect.names():
        raise InputError(f"--method must be one of {', '.join(detect.names())}; got {method!r}")
    params = parse_params(param)
    refuse_existing(out, overwrite=overwrite)
    progress = not quiet and not json_out
    ckpt, ds = load_model_and_data(checkpoint, dataset, split, progress=progress)
    x_calib = None
    if calib_split is not None:
        _, cal = load_model_and_data(checkpoint, dataset, calib_split, progress=progress)
        x_calib = cal.x[benign_indices(ckpt.model, cal, limit=limit, seed=seed)]
    det, keep = fit_detector(method, ckpt.model, ds, target_fpr=target_fpr, seed=seed,
                             progress=progress, limit=limit, params=params, x_calib=x_calib)
    out.parent.mkdir(parents=True, exist_ok=True)
    det.save(out, overwrite=overwrite)
    if calib_split is None and split == "train":
        err_console.print(
            f"note: calibrated on held-out {dataset}/train inputs; if the model was trained on "
            "them, its false-positive rate on new inputs can exceed --target-fpr (pass "
            "--calib-split with inputs the model has not seen)", highlight=False, soft_wrap=True)
    summary: dict[str, Any] = {"detector": det.name, "out": str(out), "checkpoint":
                               str(checkpoint), "dataset": dataset, "split": split,
                               "n_benign": len(keep), "target_fpr": target_fpr,
                               "threshold": det.threshold_}
    ami = next((m for m in det.members() if isinstance(m, detect.AmIDetector)), None)
    if ami is not None:
        summary["steering"] = ami.config_.to_dict()
        summary["witness_counts"] = ami.witnesses_.counts()
    if json_out:
        print_json(summary)
        return
    console.print(f"fitted [bold]{det.name}[/] on {len(keep)} benign {dataset}/{split} inputs "
                  f"(target FP {target_fpr:.0%}); wrote {out}")
    if ami is not None:
        table = Table(title="AmI witness neurons per layer")
        table.add_column("attribute")
        for layer in ami.witnesses_.layers:
            table.add_column(layer, justify="right")
        for row, per in ami.witnesses_.counts().items():
            table.add_row(row, *(str(per[layer]) for layer in ami.witnesses_.layers))
        console.print(table)
        cfg = ami.config_
        console.print(f"steered layers {', '.join(cfg.layers)}; α={cfg.alpha:g}, "
                      f"β={cfg.beta:g}, ε={cfg.epsilon:g}")


def _load_detector(path: Path, model: torch.nn.Module, *, progress: bool) -> detect.Detector:
    """``Detector.load`` (refuses a model other than the one fitted on), its warnings as one
    line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        det = detect.Detector.load(path, model, progress=progress)
    for w in caught:
        err_console.print(f"[bold yellow]warning:[/] {w.message}", highlight=False,
                          soft_wrap=True)
    return det


@app.command("run")
@user_errors
def run(
    detector: Path = typer.Argument(..., help="Detector file written by `detect fit`."),
    checkpoint: Path = typer.Argument(..., help="The checkpoint the detector was fitted on."),
    inputs: Path | None = typer.Option(None, "--inputs", "-i",
                                       help="Adversarial .npz written by `deepscope attack`."),
    dataset: str | None = typer.Option(None, "--dataset", "-d",
                                       help="Or: run on a dataset split (benign inputs)."),
    split: str = typer.Option("test", help="Split for --dataset."),
    limit: int | None = typer.Option(None, min=1, help="At most N inputs of --dataset."),
    seed: int = typer.Option(0, help="Seed of the --limit subset."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Score inputs with a saved detector and report how many it flags."""
    if (inputs is None) == (dataset is None):
        raise InputError("pass exactly one of --inputs ADV.npz or --dataset NAME")
    progress = not quiet and not json_out
    if dataset is not None:
        ckpt, ds = load_model_and_data(checkpoint, dataset, split, progress=progress)
        idx = _subset(len(ds), limit, seed).sort().values
        x, y = ds.x[idx], ds.y[idx]
        success = None
        source = f"{dataset}/{split}"
    else:
        ckpt = load_checkpoint(checkpoint)
        if not inputs.exists():  # type: ignore[union-attr]
            raise InputError(f"{inputs} does not exist")
        arrays = attacks.load_npz(inputs)
        if "x_adv" not in arrays:
            raise InputError(f"{inputs} has no x_adv array; pass a file written by "
                             "`deepscope attack`")
        x = torch.from_numpy(arrays["x_adv"]).float()
        y = torch.from_numpy(arrays["y"]).long() if "y" in arrays else None
        success = torch.from_numpy(arrays["success"]).bool() if "success" in arrays else None
        source = str(inputs)
    det = _load_detector(detector, ckpt.model, progress=progress)
    result = det.run(x)
    summary: dict[str, Any] = {"detector": det.name, "inputs": source, "n": len(result),
                               "flagged": int(result.flags.sum()), "rate": result.rate,
                               "threshold": result.threshold, "target_fpr": det.target_fpr}
    pred = predict_logits(ckpt.model, x).argmax(1)
    if success is not None and len(success) == len(x):
        ok = success
        summary["successful_attacks"] = int(ok.sum())
        summary["detection_rate"] = (float(result.flags[ok].float().mean())
                                     if bool(ok.any()) else None)
    elif y is not None:
        ok = pred == y
        summary["correctly_classified"] = int(ok.sum())
        summary["false_positive_rate"] = (float(result.flags[ok].float().mean())
                                          if bool(ok.any()) else None)
    summary["scores"] = [float(v) for v in result.scores]
    summary["flags"] = [bool(v) for v in result.flags]
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"{det.name} on {source}")
    for col in ("inputs", "flagged", "rate", "detection (successful attacks)",
                "false positives (correct benign)"):
        table.add_column(col, justify="right")

    def pct(key: str) -> str:
        v = summary.get(key)
        return "—" if v is None else f"{v:.1%}"

    table.add_row(str(summary["n"]), str(summary["flagged"]), f"{summary['rate']:.1%}",
                  pct("detection_rate"), pct("false_positive_rate"))
    console.print(table)
