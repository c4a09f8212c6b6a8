"""``deepscope audit MODEL --data PATH --out DIR``: the user's own model on their own data.

Loads the model (:func:`deepscope.models.external.load_model`) and the data
(:func:`deepscope.data.user.load_data`), cuts the data into roles, runs the audit sections
(:mod:`deepscope.audit.run`) with one progress display and a time estimate per step, and writes
``DIR/index.html`` and ``DIR/summary.json`` (:mod:`deepscope.report.audit_report`).

Outputs: everything goes into DIR — the two report files (each written atomically) and the
section cache ``DIR/.audit-cache/`` that lets an interrupted run resume. A DIR holding a finished
report, or anything but an unfinished audit, is refused without ``--overwrite`` (which also
drops the cache and starts afresh). Only ``--write-repaired FILE`` writes outside DIR, and never
over an existing file. When a run fails before any section finished, a DIR it created is
removed again.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

from deepscope.cli._common import console, err_console, print_json, user_errors
from deepscope.errors import InputError

__all__ = ["CACHE", "audit_cmd"]

#: The section cache inside DIR.
CACHE = ".audit-cache"
#: The report's own files inside DIR.
REPORT_FILES = ("index.html", "summary.json")


def _parse_sections(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    from deepscope.audit.spec import section_names

    names = tuple(s.strip() for s in value.split(",") if s.strip())
    known = section_names()
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InputError(f"--sections: unknown or empty section list {value!r}; choose from "
                         f"{','.join(known)}")
    return names


def _writable(folder: Path, what: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".deepscope-write-check."):
            pass
    except OSError as exc:
        raise InputError(f"cannot write {what}: folder {folder} is not writable "
                         f"({exc.strerror or type(exc).__name__})") from None


def check_out_dir(out: Path, *, overwrite: bool) -> bool:
    """Check DIR before any work; return True when it is to be created.

    An existing DIR is accepted when it is empty or holds only an unfinished audit (its
    cache), or with ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder name")
    if not out.exists():
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(f"cannot create --out {out}: {parent} is not a folder")
        _writable(parent, f"--out {out}")
        return True
    content = {p.name for p in out.iterdir()}
    if content - {CACHE} and not overwrite:
        what = "a finished audit report" if content & set(REPORT_FILES) else "other files"
        raise InputError(f"--out {out} already holds {what}; pass --overwrite or choose "
                         "another folder")
    _writable(out, f"--out {out}")
    return False


def _check_repaired(path: Path | None, out: Path) -> None:
    if path is None:
        return
    if path.exists():
        raise InputError(f"--write-repaired {path} already exists; give a new file name")
    if not path.parent.is_dir():
        raise InputError(f"--write-repaired {path}: folder {path.parent} does not exist")
    _writable(path.parent, f"--write-repaired {path}")


def _shape(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(",") if v.strip())
    except ValueError:
        shape = ()
    if not shape or any(v <= 0 for v in shape):
        raise InputError(f"--input-shape must be positive integers such as 1,28,28 (C,H,W) or "
                         f"40 (T), got {value!r}")
    return shape


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if len(names) < 2:
        raise InputError(f"--classes must name at least two classes, comma-separated, got "
                         f"{value!r}")
    return names


def _load(model: Path, data: Path, train_data: Path | None, opts: dict[str, Any]
          ) -> tuple[Any, Any, Any]:
    """The model, the held-out data and the training data, each checked against the model."""
    from deepscope.data.user import load_data
    from deepscope.models import vocabulary_of
    from deepscope.models.external import load_model

    loaded = load_model(model, arch=opts["arch"], input_shape=opts["input_shape"],
                        num_classes=opts["num_classes"], class_names=opts["classes"],
                        device=opts["device"])
    vocab = None if loaded.checkpoint is None else vocabulary_of(loaded.checkpoint)

    def read(path: Path) -> Any:
        return load_data(path, input_shape=loaded.input_shape or opts["input_shape"],
                         resize=opts["resize"], grayscale=opts["grayscale"],
                         label_column=opts["label_column"],
                         classes=loaded.class_names or opts["classes"], vocabulary=vocab,
                         max_samples=opts["max_samples"], seed=opts["seed"])

    held = read(data)
    loaded = loaded.check_against(held)
    train = None
    if train_data is not None:
        train = read(train_data)
        loaded.check_against(train)
    return loaded, held, train


class _Display:
    """One progress display over the whole audit: a bar in estimated seconds, one line per
    finished or skipped section."""

    def __init__(self, total: float, quiet: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed:.0f}/{task.total:.0f} s est."),
                                 TimeElapsedColumn(), console=err_console, transient=True,
                                 disable=quiet)
        self.task = self.progress.add_task("audit", total=max(total, 1.0))

    def __call__(self, kind: str, step: Any, result: Any) -> None:
        name = step.spec.name
        if kind == "start":
            self.progress.update(self.task, description=f"{name} (~{step.estimate:.0f} s)")
            return
        self.progress.advance(self.task, step.estimate)
        if self.quiet:
            return
        if kind == "cached":
            self.progress.console.print(f"[cyan]{name}[/]: from the cache of an earlier run")
        elif result.ok:
            self.progress.console.print(f"[green]{name}[/] ({result.seconds:.0f} s, est. "
                                        f"{step.estimate:.0f} s): {result.finding}")
        else:
            self.progress.console.print(f"[yellow]{name}[/] skipped: {result.reason}")


def _run(out: Path, inputs: Any, *, sections: tuple[str, ...] | None, budget: float | None,
         seed: int, write_repaired: Path | None, quiet: bool) -> Any:
    from deepscope.audit.run import Audit, budget_scale
    from deepscope.audit.spec import AuditConfig

    base = AuditConfig(sections=sections, seed=seed,
                       write_repaired=None if write_repaired is None else str(write_repaired))
    probe = Audit(inputs, base)
    total = sum(s.estimate for s in probe.plan())
    scale = budget_scale(total, budget)
    config = AuditConfig(sections=sections, seed=seed, scale=scale,
                         write_repaired=base.write_repaired)
    audit = Audit(inputs, config, cache_dir=out / CACHE, costs=probe.costs)
    plan = audit.plan()
    if not quiet:
        err_console.print(
            f"audit: {len(plan)} sections, about {sum(s.estimate for s in plan):.0f} s"
            + (f" (sample counts scaled by {scale:.2f} for --budget-seconds {budget:g})"
               if scale < 1 else ""))
    display = _Display(sum(s.estimate for s in plan), quiet)
    with display.progress:
        return audit.run(display)


@user_errors
def audit_cmd(
    model: Path = typer.Argument(..., help="Model file: a deepscope checkpoint, a TorchScript "
                                           "file, an ONNX file, or a state dict with --arch."),
    data: Path = typer.Option(..., "--data", help="Held-out data: a folder of class "
                              "sub-folders of images, an .npz with x and y, a CSV or a TSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (index.html, "
                             "summary.json); refused if it holds a finished report."),
    train_data: Path | None = typer.Option(None, "--train-data", help="What the model was "
                                           "trained on (same formats); the under/over-fitting "
                                           "diagnosis needs it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the report in --out "
                                   "and start afresh (drops the section cache)."),
    json_out: bool = typer.Option(False, "--json", help="Print summary.json on stdout."),
    max_samples: int | None = typer.Option(None, "--max-samples", min=20,
                                           help="Use at most N samples of each data set."),
    sections: str | None = typer.Option(None, "--sections", help="Comma-separated sections "
                                        "to run (default all): model,diagnosis,repair,"
                                        "robustness,detection,explanations."),
    budget_seconds: float | None = typer.Option(None, "--budget-seconds", help="Scale sample "
                                                "counts so the estimate fits this many "
                                                "seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    arch: str | None = typer.Option(None, "--arch", help="package.module:factory that builds "
                                    "the architecture of a state-dict MODEL (runs that code)."),
    input_shape: str | None = typer.Option(None, "--input-shape", help="One sample's shape, "
                                           "C,H,W or T, when the model does not say."),
    num_classes: int | None = typer.Option(None, "--num-classes", min=2, help="Outputs the "
                                           "model must have (checked)."),
    classes: str | None = typer.Option(None, "--classes", help="Class names, comma-separated, "
                                       "in label order (data are mapped to them by name)."),
    resize: bool = typer.Option(False, "--resize", help="Resize images to the model's H,W "
                                "when known, else to their most common size (bilinear, aspect "
                                "ratio not kept)."),
    grayscale: bool | None = typer.Option(None, "--grayscale/--color", help="Convert images "
                                          "to 1 or 3 channels (default: as they are)."),
    label_column: str = typer.Option("label", "--label-column", help="CSV column of the "
                                     "labels."),
    device: str = typer.Option("cpu", "--device", help="Where the model runs (cpu, cuda)."),
    write_repaired: Path | None = typer.Option(None, "--write-repaired", help="Write the "
                                               "repair preview's best model to this new file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the splits, samples and fits."),
) -> None:
    """Audit your model on your data: model card, MODE diagnosis and repair preview,
    robustness, adversarial detection and explanations, as one HTML report."""
    start = time.perf_counter()
    chosen = _parse_sections(sections)
    if budget_seconds is not None and budget_seconds <= 0:
        raise InputError(f"--budget-seconds must be positive, got {budget_seconds:g}")
    created = check_out_dir(out, overwrite=overwrite)
    _check_repaired(write_repaired, out)
    opts = {"arch": arch, "input_shape": _shape(input_shape), "num_classes": num_classes,
            "classes": _names(classes), "resize": resize, "grayscale": grayscale,
            "label_column": label_column, "device": device, "max_samples": max_samples,
            "seed": seed}
    loaded, held, train = _load(model, data, train_data, opts)
    from deepscope.audit.inputs import prepare
    from deepscope.report.audit_report import render_audit

    inputs = prepare(loaded, held, train=train, max_samples=max_samples, seed=seed)
    if not quiet:
        d = inputs.data_dict()
        err_console.print(f"data: {d['n']:,} held-out samples → test {d['roles']['test']:,}, "
                          f"validation {d['roles']['validation']:,}, pool "
                          f"{d['roles']['pool']:,}; train-like: {d['train_source']} "
                          f"({d['roles']['train-like']:,})")
        if inputs.warning:
            err_console.print(f"[yellow]note:[/] {inputs.warning}")
    if overwrite and (out / CACHE).exists():
        shutil.rmtree(out / CACHE)
    try:
        result = _run(out, inputs, sections=chosen, budget=budget_seconds, seed=seed,
                      write_repaired=write_repaired, quiet=quiet)
        path = render_audit(result, out)
    except BaseException:
        if created and out.exists() and not any((out / CACHE).glob("*.npz")):
            shutil.rmtree(out)  # nothing finished: leave no trace of this run
        raise
    if json_out:
        print_json(result.summary())
    elif not quiet:
        size = path.stat().st_size / 1e6
        console.print(f"Wrote [bold]{path}[/] ({size:.1f} MB) and summary.json in "
                      f"{time.perf_counter() - start:.0f} s")
