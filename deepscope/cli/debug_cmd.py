"""``deepscope diagnose`` and ``deepscope repair`` (MODE), on data the model did not train on.

Which data is used follows the checkpoint's record of its training data
(``deepscope.debug.heldout_split``, documented in docs/architecture.md):

* trained with ``deepscope train --split mode --seed S``: the same MODE split of the whole
  dataset (30 % train, 10 % validation, 10 % test, 50 % bug-fixing pool); another ``--seed`` is
  refused. ``diagnose`` compares train with test; ``repair`` selects from the pool, replays the
  train part, decides "fixed" on the validation part and reports on the test part.
* trained with ``deepscope train`` (official train split): ``diagnose`` compares the training
  data with the official test split; ``repair`` is refused (MODE's parts overlap the training
  data) with what to pass instead.
* no record (older or foreign checkpoints): the MODE split seeded by ``--seed`` (default 0), with
  a one-line warning on stderr that test numbers may be optimistic.

The JSON output's ``data`` entry says which data was used.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deepscope import data as ds_data
from deepscope import debug, models
from deepscope.cli._common import console, err_console, print_json, user_errors
from deepscope.cli.model_cmd import refuse_existing
from deepscope.errors import InputError

_SPLIT_HELP = ("Data the model did not train on, from the checkpoint's record: the MODE split "
               "(30% train / 10% validation / 10% test / 50% pool of train+test) it was trained "
               "with (`train --split mode`), or for `train --split train` models its training "
               "data vs the official test split; without a record, the MODE split seeded by "
               "--seed, with a warning.")
_SEED_HELP = "Seed of the MODE split; default the checkpoint's (0 without a record)."


def _load_all(dataset: str, *, progress: bool) -> ds_data.Dataset:
    """Every image of ``dataset`` (official train + test); tests replace this with a slice."""
    return ds_data.load(dataset, "all", progress=progress)


def _load(dataset: str, split: str, *, progress: bool) -> ds_data.Dataset:
    if split == "all":
        return _load_all(dataset, progress=progress)
    return ds_data.load(dataset, split, progress=progress)


def _split(checkpoint: Path, dataset: str, seed: int | None, limit: int | None, progress: bool,
           purpose: str = "diagnose") -> tuple[models.Checkpoint, debug.HeldOut]:
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be positive, got {limit}")
    ckpt = models.load_checkpoint(checkpoint)
    held = debug.heldout_split(ckpt.training_data,
                               lambda s: _load(dataset, s, progress=progress),
                               dataset=dataset, purpose=purpose, seed=seed, limit=limit)
    models.check_compatible(ckpt.model, ckpt.arch, held.train)
    return ckpt, held


def _warn(held: debug.HeldOut) -> None:
    """The held-out data's warning as one line on stderr (after the arguments are checked)."""
    if held.warning:
        err_console.print(f"[bold yellow]warning:[/] {held.warning}", highlight=False,
                          soft_wrap=True)


@user_errors
def diagnose_cmd(
    checkpoint: Path = typer.Argument(..., help="Model checkpoint (e.g. from `deepscope train`)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name. " + _SPLIT_HELP),
    seed: int | None = typer.Option(None, help=_SEED_HELP),
    threshold: float = typer.Option(0.05, help="Under-fitting: both accuracies this far below "
                                               "the mean per-label accuracy."),
    overfit_gap: float = typer.Option(0.05, help="Over-fitting: train-test gap this far above "
                                                 "the median gap."),
    limit: int | None = typer.Option(None, help="Use a stratified slice of N images (with a "
                                     "record: at most N of each part)."),
    json_out: bool = typer.Option(False, "--json", help="Print the diagnosis as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Find labels with under-fitting or over-fitting bugs (training data vs unseen test data)."""
    ckpt, split = _split(checkpoint, dataset, seed, limit, not quiet and not json_out)
    _warn(split)
    diag = debug.diagnose(ckpt.model, split.train, split.test, threshold=threshold,
                          overfit_gap=overfit_gap)
    if json_out:
        print_json({**diag.to_dict(), "checkpoint": str(checkpoint), "dataset": dataset,
                    "seed": split.seed, "data": split.to_dict()})
        return
    where = ("official train vs test" if split.protocol == "official" else
             f"MODE split seed {split.seed}")
    table = Table(title=f"per-label accuracy of {ckpt.arch} ({dataset}, {where})")
    for col in ("label", "class", "train", "test", "bug"):
        table.add_column(col)
    for i, (a, b) in enumerate(zip(diag.train_per_label, diag.test_per_label, strict=True)):
        bug = diag.bug_for(i)
        table.add_row(str(i), diag.classes[i], f"{a:.1%}", f"{b:.1%}",
                      f"[bold red]{bug.kind}[/]" if bug else "")
    console.print(table)
    if not diag.bugs:
        console.print("no per-label bug found")
    for bug in diag.bugs:
        console.print(f"label {bug.label}: {bug.kind} — {bug.evidence}")


@user_errors
def repair_cmd(
    checkpoint: Path = typer.Argument(..., help="Model checkpoint to repair (never modified)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name. " + _SPLIT_HELP +
                                " Pool = the 50% part, replay = train part, 'fixed' judged on "
                                "the validation part, reported on the test part."),
    label: int = typer.Option(..., "--label", "-l", help="The buggy label."),
    kind: str = typer.Option(..., "--kind", "-k", help="underfit or overfit."),
    strategy: str = typer.Option("auto", "--strategy", "-s",
                                 help="Selection: " + ", ".join(debug.selection.names()) + "."),
    budget: int = typer.Option(20000, min=1, help="Maximum pool samples added."),
    batch: int = typer.Option(2000, min=1, help="Samples added per round (25% selected)."),
    out: Path = typer.Option(..., "--out", "-o", help="Repaired checkpoint to write (must not "
                                                      "exist)."),
    seed: int | None = typer.Option(None, help=_SEED_HELP + " Also seeds selection and "
                                    "fine-tuning."),
    limit: int | None = typer.Option(None, help="Use a stratified slice of N images (with a "
                                     "record: at most N of each part)."),
    full_budget: bool = typer.Option(False, help="Spend the whole budget even once fixed."),
    checkpoint_dir: Path | None = typer.Option(None, help="Folder for resumable state; rerun "
                                                          "with it to continue."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out file (never the "
                                               "checkpoint being repaired)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Repair a per-label bug by MODE input selection + fine-tuning; save the repaired copy."""
    if kind not in debug.diagnosis.KINDS:
        raise InputError(f"--kind must be one of {', '.join(debug.diagnosis.KINDS)}, got "
                         f"{kind!r}")
    debug.STRATEGIES.get(strategy)
    if out.resolve() == checkpoint.resolve():
        raise InputError(f"--out {out} is the checkpoint being repaired; write the repaired "
                         "model to another path")
    refuse_existing(out, overwrite=overwrite)
    ckpt, split = _split(checkpoint, dataset, seed, limit, not quiet and not json_out,
                         purpose="repair")
    if not 0 <= label < split.train.num_classes:
        raise InputError(f"--label must be in [0, {split.train.num_classes}), got {label}")
    _warn(split)
    bug = debug.given_bug(ckpt.model, split.train, split.test, label, kind,
                          evidence="given on the command line")
    result = debug.repair(ckpt.model, bug, split.pool, budget, strategy=strategy, seed=split.seed,
                          batch=batch, train=split.train, validation=split.validation,
                          test=split.test, until_fixed=not full_budget,
                          checkpoint_dir=checkpoint_dir, progress=not quiet and not json_out)
    models.save_checkpoint(out, result.model, arch=ckpt.arch, classes=ckpt.classes,
                           config=dict(ckpt.config),
                           metadata={**dict(ckpt.metadata), "repair": result.to_dict()},
                           overwrite=overwrite)
    summary = {**result.to_dict(), "checkpoint": str(checkpoint), "out": str(out),
               "dataset": dataset, "seed": split.seed, "data": split.to_dict()}
    if json_out:
        print_json(summary)
        return
    table = Table(title=f"repair of label {label} ({kind}) with {strategy}")
    for col in ("round", "samples", "model acc (val)", "label acc (val)", "label acc (test)",
                "seconds"):
        table.add_column(col, justify="right")
    for r in result.history:
        table.add_row(str(r.round), str(r.samples_used), f"{r.model_acc:.1%}",
                      f"{r.label_acc:.1%}", f"{r.test_label_acc:.1%}", f"{r.seconds:.1f}")
    console.print(table)
    state = "fixed" if result.fixed else "not fixed"
    console.print(f"{state} (target {result.target:.1%} on validation); wrote {out}")
