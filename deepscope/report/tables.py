"""Plain-text and HTML tables built from rows of dictionaries."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any


def _format(value: Any, floatfmt: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value)


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    floatfmt: str = ".4g",
) -> str:
    """Render rows as a GitHub-flavoured markdown table.

    Parameters
    ----------
    rows : sequence of mappings
        One mapping per row; missing keys render as empty cells.
    columns : sequence of str, optional
        Column order; default is the order keys first appear in.
    floatfmt : str
        Format specification for floats.

    Returns
    -------
    str
        The table, ending with a newline.
    """
    cols = _columns(rows, columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        cells = [_format(row.get(c, ""), floatfmt).replace("|", "\\|") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    floatfmt: str = ".4g",
    highlight: Mapping[int, str] | None = None,
) -> str:
    """Render rows as an HTML ``<table>``; ``highlight`` maps row index → CSS class."""
    cols = _columns(rows, columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{highlight[i]}"' if highlight and i in highlight else ""
        cells = "".join(f"<td>{html.escape(_format(row.get(c, ''), floatfmt))}</td>" for c in cols)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
