"""Pictures of the explanation benchmark: what is recorded in the JSON, and how it is drawn.

:func:`collect` picks the first few explained inputs of a setting and records, per explainer,
their attributions (JSON-able); :func:`draw` turns that record into PNGs, so ``--report-only``
redraws without running anything:

* bytes — a hex view of the 41-byte window, one line per explainer, each byte tinted by its
  attribution (red supports "function start", blue opposes it; the explained byte framed), and
  the disassembly of the explained instruction and its successors (``capstone``, x86-64: the
  test libraries are x86-64 ELF objects; ids are byte + 1);
* text — the sentence once per explainer, each word tinted by its attribution;
* images — the input with the top-k cells of each explainer in red.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepscope.explain import Explanation, plot_overlay

SHOWN = ("dmm-men", "lime", "kernel-shap", "integrated-gradients")
N_SHOWN = {"bytes": 3, "text": 4, "image": 4}
IMAGE_K = 20


def collect(setting, exps: dict[str, list[Explanation]]) -> dict[str, Any]:
    """The first inputs of the setting's first groups and every shown explainer's attributions."""
    n = N_SHOWN[setting.modality]
    items = []
    for j, g in enumerate(setting.groups):
        for i in range(len(g.x)):
            if len(items) == n:
                break
            attr = {m: exps[m][j].attributions[i].tolist() for m in SHOWN if m in exps}
            item = {"x": g.x[i].tolist(), "target": int(g.target), "attributions": attr}
            if setting.decode is not None:
                item["tokens"] = setting.decode(g.x[i])
            if setting.modality == "image":
                item["segments"] = exps[SHOWN[1]][j].segments.tolist()
            items.append(item)
    return {"modality": setting.modality, "items": items}


def instructions(ids: list[int], start: int, n: int = 4) -> list[tuple[int, str, str]]:
    """Up to ``n`` x86-64 instructions (offset, hex bytes, text) decoded from byte ``start``
    of a window of ids (id = byte + 1; padding ends the code)."""
    import capstone

    code = []
    for i in ids[start:]:
        if i == 0:
            break
        code.append(i - 1)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    out = []
    for ins in md.disasm(bytes(code), 0):
        out.append((ins.address, ins.bytes.hex(" "), f"{ins.mnemonic} {ins.op_str}".strip()))
        if len(out) == n:
            break
    return out


def disassemble(ids: list[int], start: int, n: int = 4) -> list[str]:
    """:func:`instructions` as listing lines (``+offset  bytes  instruction``)."""
    lines = [f"+{off:02d}  {hexb:<24s} {text}" for off, hexb, text in instructions(ids, start, n)]
    return lines or ["(no valid instruction at the explained byte)"]


def _tint(values: np.ndarray) -> np.ndarray:
    """RGB per value: red for positive, blue for negative, scaled by the row's max |value|."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    scale = np.abs(v).max() or 1.0
    a = np.clip(v / scale, -1, 1)[:, None]
    red, blue, white = np.array([0.9, 0.15, 0.1]), np.array([0.15, 0.3, 0.9]), np.ones(3)
    return np.where(a >= 0, white + a * (red - white), white - a * (blue - white))


def _hex_figure(item: dict, centre: int):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    ids, methods = item["x"], list(item["attributions"])
    fig = Figure(figsize=(14, 0.45 * len(methods) + 1.1))
    ax = fig.add_subplot(1, 1, 1)
    for r, m in enumerate(methods):
        colours = _tint(np.asarray(item["attributions"][m]))
        for t, b in enumerate(ids):
            ax.add_patch(Rectangle((t, -r - 1), 1, 1, color=colours[t]))
            ax.text(t + 0.5, -r - 0.5, "··" if b == 0 else f"{b - 1:02x}", ha="center",
                    va="center", fontsize=6.5, family="monospace")
        ax.text(-0.5, -r - 0.5, m, ha="right", va="center", fontsize=7)
    ax.add_patch(Rectangle((centre, -len(methods)), 1, len(methods), fill=False, lw=1.5))
    ax.set_xlim(-9, len(ids))
    ax.set_ylim(-len(methods), 0.1)
    ax.set_axis_off()
    code = "; ".join(text for _, _, text in instructions(ids, centre, 3)) or "(not code)"
    ax.set_title(f"explained byte (framed) starts: {code}", fontsize=8, family="monospace")
    fig.tight_layout()
    return fig


def _text_figure(items: list[dict]):
    from matplotlib.figure import Figure

    methods = list(items[0]["attributions"])
    lines = [(it, m) for it in items for m in methods]
    fig = Figure(figsize=(13, 0.32 * len(lines) + 0.4 * len(items)))
    ax = fig.add_subplot(1, 1, 1)
    y = 0.0
    for it in items:
        y -= 0.4
        for m in methods:
            colours = _tint(np.asarray(it["attributions"][m]))
            ax.text(0, y, f"{m} (class {it['target']})", fontsize=7, ha="right", va="center")
            x = 0.3
            for tok, col in zip(it["tokens"], colours, strict=False):
                ax.text(x, y, tok, fontsize=7, family="monospace", va="center",
                        bbox={"facecolor": col, "edgecolor": "none", "pad": 1.0})
                x += 0.085 * (len(tok) + 1)
            y -= 0.32
    ax.set_xlim(-3, 14)
    ax.set_ylim(y, 0)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def _image_figure(items: list[dict]):
    from matplotlib.figure import Figure

    methods = list(items[0]["attributions"])
    fig = Figure(figsize=(1.8 * (len(methods) + 1), 1.9 * len(items)))
    cols = len(methods) + 1
    for i, it in enumerate(items):
        x = np.asarray(it["x"], dtype=np.float32)[None]
        ax = fig.add_subplot(len(items), cols, i * cols + 1)
        ax.imshow(x[0].mean(axis=0), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        seg = np.asarray(it["segments"], dtype=np.int64)
        for j, m in enumerate(methods):
            attr = np.asarray(it["attributions"][m], dtype=np.float64)[None]
            e = Explanation(m, it["target"], attr, seg, tuple(x.shape[1:]))
            plot_overlay(x, e, IMAGE_K, ax=fig.add_subplot(len(items), cols, i * cols + j + 2),
                         title=m if i == 0 else "")
    fig.tight_layout()
    return fig


def draw(record: dict, outdir: Path, tag: str) -> list[str]:
    """Write the setting's PNGs into ``outdir``; return their file names."""
    outdir.mkdir(parents=True, exist_ok=True)
    items, kind = record["items"], record["modality"]
    figures = []
    if kind == "bytes":
        centre = len(items[0]["x"]) // 2
        figures = [(f"{tag}_hex{i}.png", _hex_figure(it, centre)) for i, it in enumerate(items)]
    elif kind == "text":
        figures = [(f"{tag}_sentences.png", _text_figure(items))]
    else:
        figures = [(f"{tag}_overlays.png", _image_figure(items))]
    for name, fig in figures:
        fig.savefig(outdir / name, dpi=110)
    return [name for name, _ in figures]
