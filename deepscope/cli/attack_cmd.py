"""``deepscope attack``: run an adversarial attack on a checkpoint and save the results."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from rich.table import Table

from deepscope import attacks, distributed, models
from deepscope.cli import _ray
from deepscope.cli._common import console, err_console, print_json, save_figure, user_errors
from deepscope.cli.model_cmd import load_model_and_data, refuse_existing
from deepscope.errors import InputError


def parse_params(items: list[str]) -> dict[str, object]:
    """Parse ``key=value`` strings; values become int, float, bool or stay strings."""
    params: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param expects key=value, got {item!r}")
        value: object
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params[key.strip().replace("-", "_")] = value
    return params


#: Default --n: the most inputs attacked, and the work budget (gradient steps × input values)
#: the default may take: about 3 minutes of C&W L2 on a face model on 2 CPU cores.
MAX_DEFAULT_N, WORK_BUDGET = 100, 2e8


def default_n(atk: attacks.Attack, input_shape: tuple[int, ...]) -> int:
    """How many inputs ``deepscope attack`` attacks without ``--n``.

    ``WORK_BUDGET / (estimated gradient steps per input × values per input)``, between 1 and
    ``MAX_DEFAULT_N``: FGSM gets 100 inputs, C&W L2 with its defaults 2 faces or 28 digits.
    """
    values = 1
    for d in input_shape:
        values *= int(d)
    per_input = max(1, atk.estimated_cost()) * values
    return int(min(MAX_DEFAULT_N, max(1, WORK_BUDGET // per_input)))


@user_errors
def attack(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `deepscope train`."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset the model was trained on."),
    name: str = typer.Option(..., "--attack", "-a",
                             help="Attack: " + ", ".join(attacks.names()) + "."),
    target: str = typer.Option("none", help="none (untargeted), first (label 0) or next "
                                            "(true label + 1)."),
    n: int | None = typer.Option(
        None, min=1, help="Number of correctly classified inputs to attack (default: up to "
                          f"{MAX_DEFAULT_N}, fewer for slow attacks on large inputs; see "
                          "`default_n`)."),
    split: str = typer.Option("test", help="Split to take inputs from."),
    param: list[str] = typer.Option([], "--param", "-p",
                                    help="Attack parameter key=value (repeatable), e.g. eps=0.1."),
    seed: int = typer.Option(0, help="Random seed (input choice and the attack's randomness)."),
    out: Path = typer.Option(Path("adversarial.npz"), "--out", "-o", help="Output .npz file."),
    grid: Path | None = typer.Option(None, help="PNG grid of originals, adversarials and "
                                                "perturbations (default: next to --out)."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    ray: str | None = _ray.ray_option(),
    workers: int = _ray.workers_option(),
) -> None:
    """Attack N correctly classified inputs and write adversarials (.npz), a summary and a grid."""
    targets = {"none": None, "untargeted": None, "first": "first", "next": "next"}
    if name not in attacks.names():
        raise InputError(f"--attack must be one of {', '.join(attacks.names())}; got {name!r}")
    if target not in targets:
        raise InputError(f"--target must be one of none, first, next; got {target!r}")
    _ray.check(ray)
    grid = grid or out.with_suffix(".png")
    refuse_existing(out, grid, overwrite=overwrite)
    ckpt, ds = load_model_and_data(checkpoint, dataset, split,
                                   progress=not quiet and not json_out)
    params = {"seed": seed, "progress": not quiet and not json_out, **parse_params(param)}
    atk = attacks.get(name, ckpt.model, **params)
    if n is None:
        n = default_n(atk, tuple(ds.x.shape[1:]))
        err_console.print(f"--n not given: attacking up to {n} input(s) ({name} takes up to "
                          f"{atk.estimated_cost()} gradient steps per "
                          f"{'×'.join(map(str, ds.x.shape[1:]))} input); pass --n to choose",
                          highlight=False, soft_wrap=True)

    # Attack inputs the model gets right, in a seeded random order.
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    pred = models.predict_logits(ckpt.model, ds.x[order[: min(len(ds), 4 * n)]]).argmax(1)
    correct = order[: len(pred)][pred == ds.y[order[: len(pred)]]]
    chosen = correct[:n]
    if len(chosen) == 0:
        raise InputError("the model classifies none of the sampled inputs correctly")
    selection = {"requested": n, "sampled": len(pred), "correct_in_sample": len(correct),
                 "attacked": len(chosen),
                 "note": "only inputs the model classifies correctly are attacked"}
    x, y = ds.x[chosen], ds.y[chosen]
    call_kwargs = {}
    if "boxes" in type(atk).param_names():  # attacks confined to landmark regions (glasses)
        if "boxes" not in ds.extras:
            raise InputError(f"attack {name!r} needs landmark boxes; dataset {dataset!r} has "
                             f"none (use att-faces with its landmarks file)")
        call_kwargs["boxes"] = ds.extras["boxes"][chosen]
    if ray is None:
        result = atk(x, y, target=targets[target], **call_kwargs)
    else:
        result = distributed.attack(atk, x, y, target=targets[target], address=ray,
                                    workers=workers, model=checkpoint, out_dir=_ray.shards_dir(out),
                                    progress=not quiet and not json_out, **call_kwargs)

    fig = attacks.plot_grid(x, result.x_adv, labels=y.tolist(),
                            adv_labels=result.adv_labels.tolist(), class_names=ckpt.classes,
                            title=f"{name} ({target})")
    # written last, once everything is computed: the grid, then the .npz (both atomic)
    save_figure(fig, grid)
    out.parent.mkdir(parents=True, exist_ok=True)
    attacks.save_npz(result, out, x=x, overwrite=overwrite)
    if ray is not None:
        _ray.done(_ray.shards_dir(out))
    summary = {**result.to_dict(), "checkpoint": str(checkpoint), "dataset": dataset,
               "selection": selection, "npz": str(out), "grid": str(grid)}
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"{name} on {ckpt.arch} ({dataset}/{split}, target {target})")
    for col in ("inputs", "success", "mean L0", "mean L2", "mean L∞", "s / 100 img"):
        table.add_column(col, justify="right")

    def fmt(v):
        return "—" if v is None else f"{v:.3g}"

    table.add_row(str(summary["n"]), f"{summary['success_rate']:.1%}", fmt(summary["mean_l0"]),
                  fmt(summary["mean_l2"]), fmt(summary["mean_linf"]),
                  f"{summary['seconds_per_100']:.2f}")
    console.print(table)
    if len(chosen) < n:
        console.print(f"[yellow]attacked {len(chosen)} of the {n} requested inputs:[/] only "
                      f"inputs the model classifies correctly are attacked, and "
                      f"{len(correct)} of the {len(pred)} sampled {dataset}/{split} inputs are")
    console.print(f"adversarials: {out}; grid: {grid}")
