"""Code bytes and function starts of one ELF file, read with ``pyelftools``.

Which bytes are code: every ``SHT_PROGBITS`` section with the ``SHF_EXECINSTR`` flag (``.text``,
``.text.<name>`` of ``-ffunction-sections`` objects, ``.text.unlikely``, ``.init``, ...).

Which bytes start a function: the address of every ``STT_FUNC`` or ``STT_GNU_IFUNC`` symbol of the
full symbol table (``.symtab``) whose section is that code section and whose address lies inside
it (for relocatable objects the value is the offset in its section; for executables and shared
objects it is a virtual address, and the section's address is subtracted). Aliases and duplicate
symbols at one address count once. Zero-size symbols count too (hand-written assembly often
omits ``.size``). GCC's out-of-line cold parts (``foo.cold``, ``foo.cold.3``) are typed
``STT_FUNC`` but are only jumped to, never called: they are not function starts. On 32-bit ARM
the Thumb bit (bit 0 of the address) is cleared. ``.dynsym`` is never used: it lists only
exported functions, so a file without ``.symtab`` counts as stripped.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

from deepscope.errors import DataCorruptError, DataMissingError

ELF_MAGIC = b"\x7fELF"
_SHF_EXECINSTR = 0x4
_FUNC_TYPES = {"STT_FUNC", "STT_GNU_IFUNC", "STT_LOOS"}  # STT_LOOS is GNU_IFUNC on some readers
_COLD = re.compile(r"\.cold(\.\d+)?$")


@dataclass(frozen=True)
class CodeSection:
    """One executable section: its bytes and the sorted offsets where a function starts."""

    name: str
    data: bytes
    starts: tuple[int, ...]


@dataclass(frozen=True)
class ObjectCode:
    """The code of one ELF file.

    Attributes
    ----------
    name : str
        The file's (or archive member's) name.
    machine : str
        pyelftools' architecture name (e.g. ``"x64"``).
    sections : list of CodeSection
        Code sections in section-header order (empty ones left out).
    has_symtab : bool
        False when the file has no ``.symtab`` (stripped).
    cold_parts : int
        ``*.cold`` symbols that were not counted as starts.
    """

    name: str
    machine: str
    sections: list[CodeSection]
    has_symtab: bool
    cold_parts: int = 0

    @property
    def code_bytes(self) -> int:
        """Total number of code bytes."""
        return sum(len(s.data) for s in self.sections)

    @property
    def num_starts(self) -> int:
        """Total number of function starts."""
        return sum(len(s.starts) for s in self.sections)


def is_elf(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) is an ELF magic number."""
    return head.startswith(ELF_MAGIC)


def _elftools():  # imported lazily: pyelftools is the optional ``binary`` extra
    try:
        from elftools.common.exceptions import ELFError
        from elftools.construct import ConstructError
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise DataMissingError(
            "reading object code needs pyelftools; install it with "
            "`pip install 'deepscope[binary]'` (or `pip install pyelftools`)"
        ) from None
    return ELFFile, (ELFError, ConstructError)


def _starts(elf, symtab, index: dict[int, tuple[int, int]], arm: bool) -> tuple[dict, int]:
    """Map section index -> set of start offsets; also count the cold parts left out."""
    rel = elf["e_type"] == "ET_REL"
    found: dict[int, set[int]] = {i: set() for i in index}
    cold = 0
    for sym in symtab.iter_symbols():
        if sym["st_info"]["type"] not in _FUNC_TYPES:
            continue
        shndx = sym["st_shndx"]
        if not isinstance(shndx, int) or shndx not in index:
            continue
        if _COLD.search(sym.name):
            cold += 1
            continue
        addr, size = index[shndx]
        value = sym["st_value"] & ~1 if arm else sym["st_value"]
        offset = value if rel else value - addr
        if 0 <= offset < size:
            found[shndx].add(offset)
    return found, cold


def read_elf(blob: bytes, name: str) -> ObjectCode:
    """Read the code sections and function starts of the ELF file ``blob``.

    Raises
    ------
    DataCorruptError
        ``blob`` is not an ELF file, or it is truncated or malformed.
    DataMissingError
        pyelftools is not installed.
    """
    if not is_elf(blob):
        raise DataCorruptError(f"{name}: not an ELF file (no \\x7fELF magic)")
    elf_file, elf_errors = _elftools()
    try:
        elf = elf_file(io.BytesIO(blob))
        arm = elf.get_machine_arch() == "ARM"
        code = {}
        for i, sec in enumerate(elf.iter_sections()):
            if sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] & _SHF_EXECINSTR \
                    and sec["sh_size"] > 0:
                code[i] = sec
        symtab = elf.get_section_by_name(".symtab")
        has_symtab = symtab is not None and symtab["sh_type"] == "SHT_SYMTAB"
        index = {i: (s["sh_addr"], s["sh_size"]) for i, s in code.items()}
        starts, cold = _starts(elf, symtab, index, arm) if has_symtab else ({}, 0)
        sections = []
        for i, sec in code.items():
            data = sec.data()
            if len(data) != sec["sh_size"]:
                raise DataCorruptError(f"{name}: section {sec.name} is cut short")
            sections.append(CodeSection(sec.name, bytes(data), tuple(sorted(starts.get(i, ())))))
        machine = elf.get_machine_arch()
    except DataCorruptError:
        raise
    except (*elf_errors, ValueError, KeyError, IndexError, TypeError, OverflowError, OSError,
            EOFError, AssertionError, struct.error) as exc:
        raise DataCorruptError(f"{name}: truncated or malformed ELF file ({exc})") from exc
    return ObjectCode(name, machine, sections, has_symtab, cold)
