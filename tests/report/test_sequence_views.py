"""Hex view of byte windows (with capstone's disassembly) and highlighted sentences."""

from __future__ import annotations

import re
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.report import sequence_views as sv

# push rbp; mov rbp, rsp; sub rsp, 0x10 — a classic x86-64 prologue, after two bytes of a ret
CODE = bytes.fromhex("c3 90 55 48 89 e5 48 83 ec 10")


def _ids(code: bytes, pad: int = 0) -> np.ndarray:
    return np.array([b + 1 for b in code] + [0] * pad, dtype=np.int64)


def test_disassemble_decodes_the_instruction_at_the_position():
    pytest.importorskip("capstone")
    found = sv.disassemble(_ids(CODE, pad=3), 2)
    assert [(i.offset, i.mnemonic, i.operands) for i in found] == [
        (2, "push", "rbp"), (3, "mov", "rbp, rsp"), (6, "sub", "rsp, 0x10")]
    assert found[1].data == bytes.fromhex("48 89 e5")
    assert "push rbp" in str(found[0])
    assert sv.disassemble(_ids(CODE), 2, count=1)[0].mnemonic == "push"
    # padding ends the code: a truncated instruction does not decode
    assert sv.disassemble(np.array([0x48 + 1, 0x89 + 1, 0, 0], dtype=np.int64), 0) == []
    with pytest.raises(InputError, match="start must be"):
        sv.disassemble(_ids(CODE), 10)
    with pytest.raises(InputError, match="arch must be"):
        sv.disassemble(_ids(CODE), 0, arch="arm")


def test_without_capstone_the_view_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "capstone", None)
    assert sv.disassemble(_ids(CODE), 2) is None
    out = sv.byte_html(_ids(CODE), np.zeros(len(CODE)), position=2)
    assert "deepscope[binary]" in out


def test_byte_html_colours_frames_and_disassembles():
    pytest.importorskip("capstone")
    att = np.linspace(-1, 1, len(CODE) + 2)
    out = sv.byte_html(_ids(CODE, pad=2), att, position=2)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", out)
    assert cells == [f"{b:02x}" for b in CODE] + ["··", "··"]
    framed = re.findall(r'<td[^>]*outline[^>]*>([^<]*)</td>', out)
    assert framed == ["55"]
    colours = re.findall(r"background:rgb\((\d+),(\d+),(\d+)\)", out)
    first, last = (tuple(map(int, c)) for c in (colours[0], colours[-1]))
    assert first[2] > first[0] and last[0] > last[2]  # most negative blue, most positive red
    assert "push rbp" in out and "mov rbp, rsp" in out
    labels = re.findall(r"<th>(\d+)</th>", sv.byte_html(_ids(CODE * 4), np.zeros(40), offset=20))
    assert labels == ["020", "036", "052"]  # rows labelled by position in the row


def test_byte_figure_draws_one_cell_per_byte():
    ids = _ids(CODE * 4, pad=1)  # 41 bytes, as LEMNA's window
    att = np.arange(len(ids), dtype=float)
    fig = sv.byte_figure(ids, att, position=20, title="t", show_disassembly=False)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 41 and texts[2] == "55" and texts[-1] == "··"
    assert len(ax.patches) == 1  # the framed byte
    plt.close(fig)
    with pytest.raises(InputError, match="one id per attribution"):
        sv.byte_figure(ids, att[:-1])


def test_sentence_views_escape_and_colour_each_word():
    tokens = ["a", "<b>great</b>", "film", "not"]
    att = np.array([0.0, 2.0, 0.1, -1.0])
    out = sv.sentence_html(tokens, att)
    assert "&lt;b&gt;great&lt;/b&gt;" in out and "<b>" not in out
    colours = [tuple(map(int, c)) for c in re.findall(r"rgb\((\d+),(\d+),(\d+)\)", out)]
    assert colours[1][0] > colours[1][2] and colours[3][2] > colours[3][0]
    fig = sv.sentence_figure(tokens * 10, np.tile(att, 10), width=30)
    assert [t.get_text() for t in fig.axes[0].texts] == tokens * 10
    plt.close(fig)
    with pytest.raises(InputError, match="one attribution per word"):
        sv.sentence_html(tokens, att[:2])
