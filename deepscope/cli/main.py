"""Entry point of the ``deepscope`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from typer import rich_utils

from deepscope import __version__
from deepscope.cli import (
    attack_cmd,
    audit_cmd,
    data_cmd,
    debug_cmd,
    detect_cmd,
    explain_cmd,
    model_cmd,
)
from deepscope.cli._common import OneLineErrors, check_outputs, console, user_errors

#: width of ``--help`` when stdout is not a terminal (a pipe, a file): wide enough that no
#: option name is cut (rich would use 80 columns); ``TERMINAL_WIDTH`` still wins.
PIPED_HELP_WIDTH = 120
if not os.environ.get("TERMINAL_WIDTH") and not sys.stdout.isatty():
    rich_utils.MAX_WIDTH = PIPED_HELP_WIDTH

app = typer.Typer(
    cls=OneLineErrors,
    name="deepscope",
    help="Open the box of deep-learning classifiers: debug, repair, detect, explain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cmd.app, name="data")
app.command("train")(model_cmd.train)
app.command("evaluate")(model_cmd.evaluate)
app.command("attack")(attack_cmd.attack)
app.command("explain")(explain_cmd.explain_cmd)
app.add_typer(detect_cmd.app, name="detect")
app.command("diagnose")(debug_cmd.diagnose_cmd)
app.command("repair")(debug_cmd.repair_cmd)
app.command("audit")(audit_cmd.audit_cmd)


@app.command("demo")
@user_errors
def demo(
    out: Path = typer.Option(Path("report"), "--out", "-o",
                             help="Report folder (refused if it exists, unless --overwrite)."),
    arch: str = typer.Option("mlp-100k", help="Zoo architecture to train."),
    epochs: int = typer.Option(4, min=1, help="Maximum epochs per model."),
    seed: int = typer.Option(0, help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    overwrite: bool = typer.Option(False, help="Replace the report in an existing --out "
                                               "folder."),
    export: Path | None = typer.Option(None, "--export", help="Also write the buggy model "
                                       "(buggy-mnist.pt) and held-out / training samples "
                                       "(heldout.npz, train.npz) here, for `deepscope audit`."),
) -> None:
    """Train a small MNIST model with an injected bug and write an HTML report."""
    import time
    from functools import partial

    check_outputs(out, overwrite=overwrite, folder=True)  # before the work, not after it
    from deepscope.audit.demo import DemoConfig, demo_experiment
    from deepscope.audit.demo_export import FILES, export_demo_model
    from deepscope.report.demo import render_demo

    on_buggy = None
    if export is not None:
        check_outputs(*(export / f for f in FILES), overwrite=overwrite)
        on_buggy = partial(export_demo_model, export, arch=arch, seed=seed, overwrite=overwrite)
    start = time.perf_counter()
    exp = demo_experiment(DemoConfig(arch=arch, epochs=epochs, seed=seed), progress=not quiet,
                          log=lambda msg: console.print(f"[cyan]demo:[/] {msg}"),
                          on_buggy=on_buggy)
    path = render_demo(exp, out, overwrite=overwrite)
    head = exp.to_dict()
    console.print(
        f"label {head['bug_label']}: healthy {head['healthy_label_accuracy']:.1%} → buggy "
        f"{head['buggy_label_accuracy']:.1%}; model {head['healthy_accuracy']:.1%} → "
        f"{head['buggy_accuracy']:.1%}. Wrote [bold]{path}[/] in "
        f"{time.perf_counter() - start:.0f} s"
    )


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        console.print(f"deepscope {__version__}")
        raise typer.Exit(0)


def leaf_commands() -> dict[str, object]:
    """Every leaf command of the app by its full name (``"detect fit"``) → its click command."""
    tree: dict[str, object] = {}

    def walk(group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            else:
                tree[f"{prefix}{name}"] = cmd

    walk(typer.main.get_command(app), "")
    return tree


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
