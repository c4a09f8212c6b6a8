"""``deepscope train`` and ``deepscope evaluate``."""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import typer
from rich.table import Table
from torch import nn

from deepscope import __version__, distributed, models
from deepscope import data as ds_data
from deepscope.cli import _ray
from deepscope.cli._common import (
    check_outputs,
    console,
    err_console,
    print_json,
    save_figure,
    user_errors,
)
from deepscope.errors import InputError
from deepscope.models.train_checks import TrainEvalGapWarning


def _limited(ds: ds_data.Dataset, limit: int | None, seed: int) -> ds_data.Dataset:
    """A seeded, stratified slice of ``limit`` samples (or the whole dataset)."""
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be positive, got {limit}")
    return ds_data.stratified_subset(ds, limit, seed=seed)


_TRAIN_SPLITS = {"train": "official", "mode": "mode"}


def _per_label(evaluation: models.Evaluation) -> dict[str, float]:
    return {str(c): float(a) for c, a in zip(evaluation.classes, evaluation.per_label, strict=True)}


def refuse_existing(*paths: Path | None, overwrite: bool) -> None:
    """Before the work: raise :class:`InputError` if an output file exists and ``overwrite`` is
    off, or if it cannot be written (see :func:`deepscope.cli._common.check_outputs`)."""
    check_outputs(*paths, overwrite=overwrite)


def with_model_vocabulary(ckpt: models.Checkpoint, ds: ds_data.Dataset) -> ds_data.Dataset:
    """``ds`` with its texts encoded by the checkpoint's vocabulary when the two vocabularies
    differ (a text model evaluated on another text dataset); ``ds`` itself otherwise."""
    vocab = models.vocabulary_of(ckpt)
    texts = getattr(ds, "texts", None)
    if vocab is None or ds.vocab is None or texts is None:
        return ds
    if vocab.to_dict() == ds.vocab.to_dict():
        return ds
    return dataclasses.replace(ds, x=vocab.encode(list(texts)), vocab=vocab)


def load_model_and_data(checkpoint: Path, dataset: str, split: str, *, progress: bool
                        ) -> tuple[models.Checkpoint, ds_data.Dataset]:
    """Load a checkpoint and a dataset split, and check that they fit together (text data is
    encoded with the checkpoint's vocabulary, see :func:`with_model_vocabulary`)."""
    ckpt = models.load_checkpoint(checkpoint)
    ds = with_model_vocabulary(ckpt, ds_data.load(dataset, split, progress=progress))
    models.check_compatible(ckpt.model, ckpt.arch, ds)
    return ckpt, ds


def train_settings(arch: str, **given: object) -> models.zoo.TrainingDefaults:
    """The architecture's recommended training settings with the options the user gave.

    ``given`` maps option names (``epochs``, ``batch_size``, ``lr``, ``val_fraction``,
    ``patience``, ``augment``) to values; ``None`` means "not given". An unknown ``arch`` raises
    before any data is loaded.
    """
    values = {k: v for k, v in given.items() if v is not None}
    if values.get("augment") == "none":
        values["augment"] = None
    elif "augment" in values and values["augment"] not in ("digits", "faces"):
        raise InputError(f"--augment must be none, digits or faces; got {values['augment']!r}")
    return dataclasses.replace(models.zoo.training_defaults(arch), **values)


def describe_settings(s: models.zoo.TrainingDefaults) -> str:
    """One line: the training settings in use."""
    val = f"{s.val_fraction:.0%} validation split" if s.val_fraction > 0 else "no validation split"
    stop = f"patience {s.patience}" if s.val_fraction > 0 and s.patience else "fixed epochs"
    weights = (f", class weights {', '.join(f'{w:g}' for w in s.class_weight)}"
               if s.class_weight else "")
    return (f"{s.epochs} epochs, lr {s.lr:g}, batch {s.batch_size}, {val}, {stop}, "
            f"augmentation {s.augment or 'none'}{weights}")


def fit_with_recipe(model: nn.Module, train_ds: ds_data.Dataset, val_ds: ds_data.Dataset | None,
                    recipe: models.zoo.TrainingDefaults, *, seed: int, history: list,
                    quiet: bool) -> None:
    """``models.fit`` with ``recipe``; its settings (unless ``quiet``) and a
    :class:`TrainEvalGapWarning` become one line each on stderr."""
    if not quiet:  # printed after every input check, so an error stays the only line
        err_console.print(f"{models.zoo.arch_of(model)}: {describe_settings(recipe)}",
                          highlight=False, soft_wrap=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainEvalGapWarning)
        models.fit(model, train_ds, **recipe.fit_kwargs(), seed=seed, val=val_ds,
                   history=history, progress=not quiet)
    for w in caught:
        if issubclass(w.category, TrainEvalGapWarning):
            err_console.print(f"warning: {w.message}", highlight=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _bug_recipe(bug: str | None, label: int | None, keep: float) -> dict | None:
    """``--bug/--bug-label/--bug-keep`` as the recipe ``models.training_split`` takes."""
    if bug is None:
        if label is not None:
            raise InputError("--bug-label needs --bug (underfit or overfit)")
        return None
    if bug not in models.bugs.names():
        raise InputError(f"--bug must be one of {', '.join(models.bugs.names())}, got {bug!r}")
    if label is None:
        raise InputError("--bug needs --bug-label (the label the bug hits)")
    return {"kind": bug, "label": label, "keep": keep}


def build_config(arch: str, train_ds: ds_data.Dataset) -> dict[str, int]:
    """``zoo.build`` keyword arguments (stored as the checkpoint's config, to rebuild the model):
    the number of classes, and for a sequence model the data's vocabulary size (its token
    vocabulary, or ``info["vocab_size"]``: 257 for bytes)."""
    config = {"num_classes": train_ds.num_classes}
    if models.zoo.spec(arch).modality == "sequence":
        size = len(train_ds.vocab) if train_ds.vocab is not None else train_ds.info.get(
            "vocab_size")
        if size is not None:
            config["vocab_size"] = int(size)
    return config


def calibrate(model: nn.Module, val_ds: ds_data.Dataset | None, *, quiet: bool
              ) -> models.tagging.Calibration | None:
    """For a tagger trained with a validation split: fold the F1-optimal decision threshold on
    that split into the model (:func:`deepscope.models.tagging.calibrate_threshold`)."""
    if val_ds is None or not val_ds.per_position or val_ds.num_classes != 2:
        return None
    result = models.tagging.calibrate_threshold(model, val_ds)
    if not quiet:
        err_console.print(
            f"decision threshold {result.threshold:.3f} (logit margin {result.margin:+.2f}) "
            f"chosen on the validation split: F1 {result.f1_before:.4f} → {result.f1_after:.4f}",
            highlight=False, soft_wrap=True)
    return result


def _tagger_metrics(evaluation: models.Evaluation,
                    decision: models.tagging.Calibration | None) -> dict[str, object]:
    if not evaluation.per_position:
        return {}
    out: dict[str, object] = {"test_precision": evaluation.precision,
                              "test_recall": evaluation.recall, "test_f1": evaluation.f1}
    if decision is not None:
        out["decision"] = decision.to_dict()
    return out


@user_errors
def train(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (see `data list`)."),
    arch: str = typer.Option(..., "--arch", "-a", help="Zoo architecture name."),
    epochs: int | None = typer.Option(None, min=1, help="Maximum number of epochs "
                                      "(default: the architecture's recommended settings, "
                                      "as every option marked *)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint file to write."),
    seed: int = typer.Option(0, help="Random seed (initialisation, data order, split)."),
    batch_size: int | None = typer.Option(None, min=1, help="Batch size (*)."),
    lr: float | None = typer.Option(None, min=0.0, help="Learning rate (*)."),
    val_fraction: float | None = typer.Option(None, min=0.0, max=0.5,
                                              help="Share of the training split held out for "
                                                   "early stopping; 0 = none (*)."),
    patience: int | None = typer.Option(None, min=1, help="Early-stopping patience in epochs "
                                        "(*; none for fixed-epoch recipes)."),
    augment: str | None = typer.Option(None, help="Augmentation: none, digits or faces (*)."),
    limit: int | None = typer.Option(None, help="Train on a stratified slice of N samples."),
    split: str = typer.Option("train", help="Training data: 'train' = the official train split "
                              "(test on the official test split); 'mode' = the train part of "
                              "the MODE split of train+test seeded by --seed (early stopping on "
                              "its validation part), which `diagnose` and `repair` need to "
                              "work on unseen data. Recorded in the checkpoint."),
    bug: str | None = typer.Option(None, help="Inject a bug into the training data: underfit "
                                   "(keep a --bug-keep share of --bug-label's samples) or overfit "
                                   "(keep only the share nearest one prototype). Recorded in the "
                                   "checkpoint, so diagnose/repair see the same data."),
    bug_label: int | None = typer.Option(None, help="Label the injected bug hits."),
    bug_keep: float = typer.Option(0.1, min=0.0, max=1.0, help="Share of --bug-label's "
                                   "training samples kept by --bug."),
    overwrite: bool = typer.Option(False, help="Replace an existing checkpoint file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Train a zoo architecture on a dataset and save an atomic, safe-to-load checkpoint."""
    refuse_existing(out, overwrite=overwrite)
    models.zoo.spec(arch)  # unknown names fail before any data is loaded
    if split not in _TRAIN_SPLITS:
        raise InputError(f"--split must be 'train' or 'mode', got {split!r}")
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be positive, got {limit}")
    injected = _bug_recipe(bug, bug_label, bug_keep)
    recipe = train_settings(arch, epochs=epochs, batch_size=batch_size, lr=lr,
                            val_fraction=val_fraction, patience=patience, augment=augment)
    epochs, val_fraction = recipe.epochs, recipe.val_fraction
    parts = models.training_split(lambda s: ds_data.load(dataset, s, progress=not quiet),
                                  dataset=dataset, protocol=_TRAIN_SPLITS[split], seed=seed,
                                  limit=limit, val_fraction=val_fraction, bug=injected)
    train_ds, val_ds, test_ds = parts.train, parts.validation, parts.test
    models.check_arch_input(arch, train_ds.input_shape, dataset=f"dataset {dataset!r}")
    config = build_config(arch, train_ds)
    model = models.zoo.build(arch, **config, seed=seed)
    history: list = []
    start = time.perf_counter()
    fit_with_recipe(model, train_ds, val_ds, recipe, seed=seed, history=history, quiet=quiet)
    decision = calibrate(model, val_ds, quiet=quiet)
    seconds = time.perf_counter() - start
    evaluation = models.evaluate(model, test_ds)
    metadata = {
        "dataset": dataset,
        "train_samples": len(train_ds),
        "epochs_run": len(history),
        "seed": seed,
        "seconds": round(seconds, 2),
        "settings": recipe.to_dict(),
        "test_accuracy": evaluation.accuracy,
        **_tagger_metrics(evaluation, decision),
        "deepscope_version": __version__,
        models.provenance.METADATA_KEY: parts.record.to_dict(),
        **models.vocabulary_metadata(train_ds.vocab),
    }
    path = models.save_checkpoint(out, model, arch=arch, classes=train_ds.classes, config=config,
                                  metadata=metadata, overwrite=overwrite)
    summary = {"checkpoint": str(path), "arch": arch,
               **{k: v for k, v in metadata.items() if k != models.text_io.VOCAB_KEY},
               "per_label": _per_label(evaluation)}
    if json_out:
        print_json(summary)
    else:
        score = (f"test F1 [bold]{evaluation.f1:.4f}[/] (precision {evaluation.precision:.4f}, "
                 f"recall {evaluation.recall:.4f}, per byte)" if evaluation.per_position else
                 f"test accuracy [bold]{evaluation.accuracy:.2%}[/]")
        console.print(f"saved [bold]{path}[/] — {arch} on {dataset}: {score} after "
                      f"{len(history)} epochs ({seconds:.0f} s)")


def _tagger_table(arch: str | None, dataset: str, split: str, ev: models.Evaluation) -> Table:
    """Per-position metrics of a tagger: class-1 precision / recall / F1 and the byte counts."""
    conf = ev.confusion
    table = Table(title=f"{arch} on {dataset}/{split} ({ev.n} sequences, {int(conf.sum())} "
                        "positions, padding excluded)")
    for column in ("metric (per position)", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    positive = ev.classes[1]
    rows = [(f"{positive}: precision", f"{ev.precision:.4f}"),
            (f"{positive}: recall", f"{ev.recall:.4f}"),
            (f"{positive}: F1", f"{ev.f1:.4f}"),
            ("true positives / false positives / false negatives",
             f"{conf[1, 1]} / {conf[0, 1]} / {conf[1, 0]}"),
            ("accuracy", f"{ev.accuracy:.4%}")]
    for name, value in rows:
        table.add_row(name, value, style="bold" if name.endswith("F1") else None)
    return table


@user_errors
def evaluate(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `deepscope train`."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name."),
    split: str = typer.Option("test", help="Split to evaluate on: train, test or all."),
    limit: int | None = typer.Option(None, help="Evaluate on a stratified slice of N samples."),
    confusion: Path | None = typer.Option(None, help="Also write the confusion matrix as PNG."),
    overwrite: bool = typer.Option(False, help="Replace an existing --confusion file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (overall and per-label "
                                                        "accuracy) on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    ray: str | None = _ray.ray_option(),
    workers: int = _ray.workers_option(),
) -> None:
    """Evaluate a checkpoint: overall and per-label accuracy, optional confusion-matrix PNG."""
    _ray.check(ray)
    refuse_existing(confusion, overwrite=overwrite)
    ckpt, ds = load_model_and_data(checkpoint, dataset, split,
                                   progress=not quiet and not json_out)
    ds = _limited(ds, limit, 0)
    warning = models.provenance.overlap_warning(ckpt.training_data, dataset, split)
    if warning:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if ray is None:
        evaluation = models.evaluate(ckpt.model, ds)
    else:
        evaluation = distributed.evaluate(checkpoint, ds, address=ray, workers=workers,
                                          progress=not quiet and not json_out)
    if confusion is not None:
        from deepscope.report import plots

        save_figure(plots.confusion_matrix(evaluation.confusion, evaluation.classes), confusion)
    payload = {
        "checkpoint": str(checkpoint),
        "arch": ckpt.arch,
        "dataset": dataset,
        "split": split,
        "n": evaluation.n,
        "accuracy": evaluation.accuracy,
        "per_label": _per_label(evaluation),
        "confusion": evaluation.confusion.tolist(),
        "warning": warning,
    }
    if evaluation.per_position:
        payload.update(positions=int(evaluation.confusion.sum()), precision=evaluation.precision,
                       recall=evaluation.recall, f1=evaluation.f1)
    if json_out:
        print_json(payload)
        return
    if evaluation.per_position:
        console.print(_tagger_table(ckpt.arch, dataset, split, evaluation))
        return
    table = Table(title=f"{ckpt.arch} on {dataset}/{split} (n={evaluation.n})")
    table.add_column("label")
    table.add_column("samples", justify="right")
    table.add_column("accuracy", justify="right")
    counts = evaluation.confusion.sum(axis=1)
    worst = int(evaluation.per_label.argmin())
    for i, name in enumerate(evaluation.classes):
        style = "bold red" if i == worst else None
        table.add_row(str(name), str(int(counts[i])), f"{evaluation.per_label[i]:.2%}",
                      style=style)
    table.add_row("all", str(evaluation.n), f"{evaluation.accuracy:.2%}", style="bold")
    console.print(table)
    if confusion is not None:
        console.print(f"confusion matrix written to {confusion}")
