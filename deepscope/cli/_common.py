"""Shared CLI plumbing: consoles, error handling, output checks, JSON output."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer import rich_utils
from typer.core import TyperGroup

from deepscope._atomic import atomic_write
from deepscope.errors import DeepscopeError, InputError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

#: exit code for user mistakes (bad arguments, missing or corrupt files, wrong shapes)
EXIT_USER_ERROR = 2

#: where :func:`print_json` writes while a ``--json`` command runs (stdout is sent to stderr)
_json_stream: list[IO[str]] = []


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print a one-line error and return the ``typer.Exit`` to raise."""
    one_line = escape(" ".join(str(message).split()))
    err_console.print(f"[bold red]error:[/] {one_line}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _os_message(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    return f"{what}: {exc.filename}" if exc.filename else f"{what} ({exc})"


@contextlib.contextmanager
def _json_mode(enabled: bool) -> Iterator[None]:
    """While a ``--json`` command runs, everything printed on stdout goes to stderr instead;
    only :func:`print_json` writes to the real stdout, so stdout holds exactly one document."""
    if not enabled:
        yield
        return
    _json_stream.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_stream.pop()


def user_errors(func: F) -> F:
    """Turn deepscope and file-system errors into a one-line message and exit code 2.

    A command called with ``json_out=True`` (``--json``) prints only its JSON document on
    stdout: progress lines and console output go to stderr.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _json_mode(bool(kwargs.get("json_out"))):
                return func(*args, **kwargs)
        except DeepscopeError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # `deepscope ... | head`: typer exits quietly
                raise
            raise fail(_os_message(exc)) from None
        except (zipfile.BadZipFile, EOFError) as exc:
            raise fail(f"a file could not be read: {exc or type(exc).__name__}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


def print_json(payload: Any) -> None:
    """Write ``payload`` as JSON on stdout (no rich markup, machine-readable)."""
    stream = _json_stream[-1] if _json_stream else sys.stdout
    stream.write(json.dumps(payload, indent=2, default=_json_default) + "\n")
    stream.flush()


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)


# ----------------------------------------------------------------------------------------------
# outputs: checked before the work, written atomically after it


def check_outputs(*paths: Path | None, overwrite: bool, folder: bool = False) -> None:
    """Check every output path before any work is done.

    Parameters
    ----------
    *paths : Path or None
        Files the command will write (``None`` entries are skipped).
    overwrite : bool
        ``--overwrite``: an existing output may be replaced; otherwise it is refused.
    folder : bool
        The outputs are folders (``demo --out DIR``); an existing folder counts as existing.

    Raises
    ------
    InputError
        An output exists (without ``overwrite``), is a folder where a file is expected, or its
        folder cannot be created or written to.
    """
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        if path.exists() and not overwrite:
            raise InputError(f"{path} already exists; pass --overwrite or choose another path")
        if path.is_dir() and not folder:
            raise InputError(f"{path} is a folder; give a file name")
        if path.exists() and not path.is_dir() and folder:
            raise InputError(f"{path} is a file; give a folder name")
        _check_writable(path, inside=folder and path.is_dir())


def _check_writable(path: Path, *, inside: bool) -> None:
    """Raise InputError unless a file can be created where ``path`` will be written."""
    folder = path if inside else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".deepscope-write-check."):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot write {path}: folder {folder} is not writable ({reason})"
                         ) from None


def save_figure(fig: Any, path: Path, *, dpi: int = 120) -> Path:
    """Write a matplotlib figure atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi,
                        bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# usage errors as one line


class OneLineErrors(TyperGroup):
    """The root command group: usage errors (bad option values, unknown options, missing
    arguments) print one ``error:`` line on stderr and exit 2, like every other error."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # typer's (vendored click's) usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help text, as typer shows it
                rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            fail(exc.format_message() + hint, code=exc.exit_code)
            sys.exit(exc.exit_code)
        except typer.Abort:
            fail("aborted", code=1)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
