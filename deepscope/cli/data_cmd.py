"""``deepscope data``: list, verify and build the datasets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deepscope import data as ds_data
from deepscope.cli._common import console, print_json, user_errors

app = typer.Typer(help="List, verify and build datasets.", no_args_is_help=True)


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
        spec = ds_data.DATASETS.get(name)
        row = {"dataset": name, "files": len(statuses), **counts,
               "description": spec.description}
        if spec.buildable:  # files are the sources of the local build
            built = spec.build_info() is not None
            row["corrupt"] = sum(f.status in _BAD for f in statuses)
            row["files"] = len(statuses) if built else 0
            row["description"] += "; " + _sources_summary(name, statuses, built)
            row["sources"] = [s.to_dict() for s in statuses] if built else []
        rows.append(row)
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
    for r in rows:
        info = ds_data.DATASETS.get(r["dataset"]).build_info()
        if info is not None:
            splits = "; ".join(f"{k}: {v['archives']} archives, {v['windows']:,} windows, "
                               f"{v['functions']:,} functions" for k, v in info["splits"].items())
            where = info.get("source_dir") or "the sources given to `data build`"
            console.print(f"{r['dataset']}: built {info.get('built_at', '?')} from {where} "
                          f"({splits}); test sources: {', '.join(info['held_out'])}",
                          highlight=False)


@app.command("verify")
@user_errors
def verify(
    name: str | None = typer.Argument(None, help="Dataset to check (default: all)."),
    strict: bool = typer.Option(False, help="Also fail when a file is missing."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check every dataset file's sha256. Exit 0 when every present file checks out.

    For a built dataset (function-starts) the files are its build's sources: ``changed``
    (sha256 differs from the build's manifest) fails like ``corrupt``; ``new`` is informative.
    """
    statuses = ds_data.verify(name)
    if json_out:
        print_json([s.to_dict() for s in statuses])
    else:
        table = Table(title=f"sha256 check of {ds_data.data_dir()}")
        for col in ("dataset", "file", "status"):
            table.add_column(col)
        for s in statuses:
            colour = _COLOUR.get(s.status, "bold red")
            table.add_row(s.dataset, str(s.path), f"[{colour}]{s.status}[/]")
        console.print(table)
    corrupt = [s for s in statuses if s.status in _BAD]
    missing = [s for s in statuses if s.status == "missing"]
    if corrupt or (strict and missing):
        raise typer.Exit(1)


_COLOUR = {"ok": "green", "missing": "yellow", "corrupt": "bold red", "changed": "bold red",
           "new": "cyan"}
#: statuses that make ``data verify`` fail: the file (or a built dataset's source) differs
_BAD = ("corrupt", "changed")


def _sources_summary(name: str, statuses: list, built: bool) -> str:
    """One line on a built dataset's sources: how many, and which changed."""
    if not built:
        if any(s.status == "corrupt" for s in statuses):
            return f"its cache is unreadable: rebuild it with `deepscope data build {name}`"
        return f"not built yet: `deepscope data build {name}` (or the first load) builds it"
    changed = [s.path.name for s in statuses if s.status in ("changed", "missing")]
    new = [s.path.name for s in statuses if s.status == "new"]
    text = f"{len(statuses) - len(new)} source files"
    text += f"; CHANGED since the build: {', '.join(changed)}" if changed else ", all unchanged"
    if new:
        text += f"; new since the build: {', '.join(new)}"
    return text


@app.command("build")
@user_errors
def build(
    name: str = typer.Argument(..., help="Dataset to build (function-starts)."),
    paths: list[Path] = typer.Argument(None, help="More source files or folders (as --sources).",
                                       show_default=False),
    sources: list[Path] = typer.Option(
        None, "--sources", show_default=False,
        help="Unstripped ELF files, .a archives or folders of them (repeatable; paths after the "
             "dataset name count too). Default: the machine's lib*.a static libraries."),
    held_out: list[str] = typer.Option(
        None, "--held-out", show_default=False,
        help="Source name for the test split (repeatable). Default: the built-in list for the "
             "machine's libraries, a seeded 20 % of the files for --sources."),
    seed: int = typer.Option(0, help="Seed of the test draw of --sources."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Build (or rebuild) a derived dataset's cache, e.g. the function-start windows."""
    chosen = [*(sources or []), *(paths or [])]
    manifest = ds_data.build(name, sources=chosen or None, held_out=held_out or None, seed=seed,
                             progress=not quiet)
    if json_out:
        print_json(manifest)
        return
    table = Table(title=f"{name}: built in {manifest['build_seconds']:.1f} s")
    cols = ("split", "archives", "windows", "functions", "bytes")
    for col in cols:
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, row in manifest["splits"].items():
        table.add_row(split, *(f"{row[c]:,}" for c in cols[1:]))
    console.print(table)
    console.print(f"test sources: {', '.join(manifest['held_out']) or '(none)'}")
