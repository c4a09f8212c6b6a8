"""``deepscope data``: list and verify the datasets in the data directory."""

from __future__ import annotations

import typer
from rich.table import Table

from deepscope import data as ds_data
from deepscope.cli._common import console, print_json, user_errors

app = typer.Typer(help="List and verify datasets.", no_args_is_help=True)


@app.command("list")
@user_errors
def list_datasets(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the known datasets and whether their files are present and intact."""
    rows = []
    for name in ds_data.names():
        statuses = ds_data.verify(name)
        counts = {s: sum(f.status == s for f in statuses) for s in ("ok", "missing", "corrupt")}
        rows.append({"dataset": name, "files": len(statuses), **counts,
                     "description": ds_data.DATASETS.get(name).description})
    if json_out:
        print_json({"data_dir": str(ds_data.data_dir()), "datasets": rows})
        return
    table = Table(title=f"datasets in {ds_data.data_dir()}")
    cols = ("dataset", "files", "ok", "missing", "corrupt", "description")
    for col in cols:
        table.add_column(col, justify="left" if col in ("dataset", "description") else "right")
    for r in rows:
        style = "red" if r["corrupt"] else ("yellow" if r["missing"] else "green")
        table.add_row(*(str(r[c]) for c in cols), style=style)
    console.print(table)


@app.command("verify")
@user_errors
def verify(
    name: str | None = typer.Argument(None, help="Dataset to check (default: all)."),
    strict: bool = typer.Option(False, help="Also fail when a file is missing."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check every dataset file's sha256. Exit 0 when every present file checks out."""
    statuses = ds_data.verify(name)
    if json_out:
        print_json([s.to_dict() for s in statuses])
    else:
        table = Table(title=f"sha256 check of {ds_data.data_dir()}")
        for col in ("dataset", "file", "status"):
            table.add_column(col)
        colour = {"ok": "green", "missing": "yellow", "corrupt": "bold red"}
        for s in statuses:
            table.add_row(s.dataset, str(s.path), f"[{colour[s.status]}]{s.status}[/]")
        console.print(table)
    corrupt = [s for s in statuses if s.status == "corrupt"]
    missing = [s for s in statuses if s.status == "missing"]
    if corrupt or (strict and missing):
        raise typer.Exit(1)
