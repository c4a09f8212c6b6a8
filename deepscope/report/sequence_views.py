"""Views of sequence explanations: a hex view of a byte window, a sentence with highlighted words.

Only drawing: the attributions come from an explainer (:class:`deepscope.explain.Explanation`),
the ids from the dataset. Bytes are stored as value + 1 (0 = padding), as everywhere in
deepscope; the hex view shows the byte values and colours each by its attribution (red supports
the explained class, blue opposes it, on a scale symmetric around 0), frames the explained byte
and prints the disassembly of the instruction that starts there (``capstone``, the optional
``binary`` extra; without it the view says so). Words work the same way, coloured in place.

Every ``*_figure`` function takes ``ax=None`` and returns the figure; every ``*_html`` function
returns a trusted HTML fragment with the text escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors as mcolors

from deepscope.errors import InputError

__all__ = ["Instruction", "byte_figure", "byte_html", "disassemble", "sentence_figure",
           "sentence_html"]

#: diverging colour map of the views (red = supports the explained class)
CMAP = "RdBu_r"
#: bytes per row of the hex view
ROW = 16
#: the dataset's code is x86-64 (``function-starts``: every source records machine x64)
ARCHES = {"x86-64": ("CS_ARCH_X86", "CS_MODE_64"), "x86": ("CS_ARCH_X86", "CS_MODE_32")}


@dataclass(frozen=True)
class Instruction:
    """One disassembled instruction: offset in the window, its bytes, mnemonic and operands."""

    offset: int
    data: bytes
    mnemonic: str
    operands: str

    def __str__(self) -> str:
        text = f"+{self.offset:02d}  {self.data.hex(' '):<24} {self.mnemonic} {self.operands}"
        return text.rstrip()


def _check(ids: np.ndarray, attributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    att = np.asarray(attributions, dtype=np.float64)
    if ids.ndim != 1 or att.shape != ids.shape:
        raise InputError(f"a view needs one id per attribution (1-D, same length), got ids "
                         f"{ids.shape} and attributions {att.shape}")
    return ids.astype(np.int64), np.nan_to_num(att)


def _norm(att: np.ndarray) -> mcolors.Normalize:
    scale = float(np.abs(att).max()) or 1.0
    return mcolors.Normalize(-scale, scale)


def disassemble(ids: Sequence[int] | np.ndarray, start: int, *, arch: str = "x86-64",
                count: int = 3) -> list[Instruction] | None:
    """Up to ``count`` instructions decoded from byte ``start`` of ``ids`` (value + 1 ids,
    stopping at the first padding byte); ``None`` when ``capstone`` is not installed.

    An empty list means the bytes at ``start`` do not decode as an instruction.
    """
    if arch not in ARCHES:
        raise InputError(f"arch must be one of {sorted(ARCHES)}, got {arch!r}")
    try:
        import capstone
    except ImportError:
        return None
    ids = np.asarray(ids, dtype=np.int64)
    if not 0 <= start < len(ids):
        raise InputError(f"start must be in 0..{len(ids) - 1}, got {start}")
    tail = ids[start:]
    end = int(np.argmax(tail == 0)) if (tail == 0).any() else len(tail)
    code = bytes((tail[:end] - 1).astype(np.uint8).tolist())
    a, m = (getattr(capstone, name) for name in ARCHES[arch])
    md = capstone.Cs(a, m)
    return [Instruction(int(i.address), bytes(i.bytes), i.mnemonic, i.op_str)
            for _, i in zip(range(count), md.disasm(code, start), strict=False)]


def _disasm_lines(found: list[Instruction] | None) -> list[str]:
    if found is None:
        return ["(disassembly needs capstone: pip install 'deepscope[binary]')"]
    return [str(i) for i in found] or ["(the bytes here do not decode as an instruction)"]


def byte_figure(ids: np.ndarray, attributions: np.ndarray, *, position: int | None = None,
                title: str = "", disassembly: list[Instruction] | None = None,
                show_disassembly: bool = True, offset: int = 0, ax=None):
    """Hex view of a byte window (``ROW`` bytes a row) coloured by attribution.

    Parameters
    ----------
    ids : ndarray
        The window's byte ids (value + 1; 0 = padding, shown as ``··``).
    attributions : ndarray
        One attribution per byte.
    position : int, optional
        Index in the window of the explained byte (framed).
    title : str
        Figure title.
    disassembly : list of Instruction, optional
        Printed under the grid; by default :func:`disassemble` from ``position``.
    show_disassembly : bool
        Print the disassembly lines at all.
    offset : int
        Position of the window's first byte in its row (the row labels count from it).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ids, att = _check(ids, attributions)
    rows = -(-len(ids) // ROW)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.42 * ROW + 1.0, 0.42 * rows + 1.4))
    grid = np.full((rows, ROW), np.nan)
    grid.flat[: len(att)] = att
    norm = _norm(att)
    ax.imshow(np.ma.masked_invalid(grid), cmap=CMAP, norm=norm, aspect="equal")
    for i, v in enumerate(ids):
        r, c = divmod(i, ROW)
        shade = abs(norm(att[i]) - 0.5) > 0.35
        ax.text(c, r, "··" if v == 0 else f"{int(v) - 1:02x}", ha="center", va="center",
                fontsize=7, family="monospace", color="white" if shade else "black")
    if position is not None:
        r, c = divmod(int(position), ROW)
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=2.2, ec="black"))
    ax.set_xticks(range(ROW))
    ax.set_xticklabels([f"{c:x}" for c in range(ROW)], fontsize=7, family="monospace")
    ax.set_yticks(range(rows))
    ax.set_yticklabels([f"{offset + r * ROW:03d}" for r in range(rows)], fontsize=7,
                       family="monospace")
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    if show_disassembly and position is not None:
        found = disassembly if disassembly is not None else disassemble(ids, int(position))
        ax.set_xlabel("\n".join(_disasm_lines(found)), fontsize=7, family="monospace",
                      loc="left")
    return ax.figure


def _css_colour(value: float, norm: mcolors.Normalize) -> str:
    r, g, b, _ = plt.get_cmap(CMAP)(norm(value))
    return f"rgb({int(255 * r)},{int(255 * g)},{int(255 * b)})"


def byte_html(ids: np.ndarray, attributions: np.ndarray, *, position: int | None = None,
              disassembly: list[Instruction] | None = None, offset: int = 0) -> str:
    """The hex view as an HTML fragment: a monospace table, one coloured cell per byte (the
    attribution in its tooltip), the explained byte framed, the disassembly below; rows are
    labelled by position in the row, counted from ``offset``."""
    ids, att = _check(ids, attributions)
    norm = _norm(att)
    cells = []
    for i, v in enumerate(ids):
        if i % ROW == 0:
            cells.append(("</tr>" if i else "") + f"<tr><th>{offset + i:03d}</th>")
        frame = "outline:2px solid #000;" if position is not None and i == position else ""
        text = "··" if v == 0 else f"{int(v) - 1:02x}"
        cells.append(f'<td title="{att[i]:+.4g}" style="background:{_css_colour(att[i], norm)};'
                     f'{frame}font-family:monospace;text-align:center">{text}</td>')
    table = "<table class='hexview'>" + "".join(cells) + "</tr></table>"
    if position is None:
        return table
    found = disassembly if disassembly is not None else disassemble(ids, int(position))
    lines = html.escape("\n".join(_disasm_lines(found)))
    return table + f"<pre>{lines}</pre>"


def _check_words(tokens: Sequence[str], attributions: np.ndarray) -> np.ndarray:
    att = np.nan_to_num(np.asarray(attributions, dtype=np.float64))
    if att.ndim != 1 or len(att) != len(tokens):
        raise InputError(f"a sentence view needs one attribution per word: {len(tokens)} "
                         f"words, attributions {att.shape}")
    return att


def sentence_html(tokens: Sequence[str], attributions: np.ndarray) -> str:
    """The words of a sentence, each on a background of its attribution's colour."""
    att = _check_words(tokens, attributions)
    norm = _norm(att)
    spans = [f'<span title="{a:+.4g}" style="background:{_css_colour(a, norm)};padding:1px 3px;'
             f'border-radius:3px">{html.escape(str(t))}</span>' for t, a in zip(tokens, att,
                                                                                 strict=True)]
    return "<p class='sentence'>" + " ".join(spans) + "</p>"


def sentence_figure(tokens: Sequence[str], attributions: np.ndarray, *, title: str = "",
                    width: int = 60, ax=None):
    """The sentence as text, each word on a box of its attribution's colour; lines wrap at
    about ``width`` characters. Returns the figure."""
    att = _check_words(tokens, attributions)
    lines: list[list[int]] = [[]]
    used = 0
    for i, t in enumerate(tokens):
        if lines[-1] and used + len(str(t)) + 1 > width:
            lines.append([])
            used = 0
        lines[-1].append(i)
        used += len(str(t)) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(0.11 * width + 0.5, 0.38 * len(lines) + 0.6))
    norm = _norm(att)
    cmap = plt.get_cmap(CMAP)
    for row, idx in enumerate(lines):
        col = 0
        for i in idx:
            word = str(tokens[i])
            strong = abs(norm(att[i]) - 0.5) > 0.35
            ax.text(col, -row, word, family="monospace", fontsize=9, va="center",
                    color="white" if strong else "black",
                    bbox={"facecolor": cmap(norm(att[i])), "edgecolor": "none", "pad": 1.5})
            col += len(word) + 1
    ax.set_xlim(-0.5, width + 0.5)
    ax.set_ylim(-len(lines) + 0.4, 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure
