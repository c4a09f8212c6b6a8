"""Function-start windows from real object code compiled here with gcc (ar, elf, binary,
function_starts), checked against objdump's symbol table."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import deepscope.data as dd
from deepscope.data import ar, binary, elf
from deepscope.data import function_starts as fs
from deepscope.errors import DataCorruptError, DataMissingError, InputError

TOOLS = ("gcc", "ar", "strip", "objdump", "nm")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="needs gcc and binutils (ar, strip, objdump, nm)",
)

SOURCES = {
    # plain .text; a static helper; an alias of `target` (one start for two symbols)
    "a.c": """int add(int a, int b) { return a + b; }
__attribute__((noinline)) static int square(int x) { return x * x; }
int use(int x) { return square(x) + add(x, 1); }
int target(void) { return 7; }
int alias(void) __attribute__((alias("target")));
""",
    # compiled with -ffunction-sections: every function in its own .text.<name>
    "b.c": """int mul(int a, int b) { return a * b; }
int neg(int a) { return -a; }
long sum(const int *v, int n) { long s = 0; for (int i = 0; i < n; i++) s += v[i]; return s; }
""",
    # its last function has the bytes of b.c's `neg`
    "c.c": """int other(int x) { return x ^ 0x5a5a; }
int neg2(int a) { return -a; }
""",
    "main.c": "int main(void) { return 0; }\n",
}


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """a.o, b.o (-ffunction-sections), c.o, long_object_name_here.o, liba.a, libc.a, prog,
    prog-stripped."""
    d = tmp_path_factory.mktemp("objects")
    for name, text in SOURCES.items():
        (d / name).write_text(text)
    flags = ("-O1", "-fno-toplevel-reorder", "-c")
    _run("gcc", *flags, "a.c", "-o", "a.o", cwd=d)
    _run("gcc", *flags, "-ffunction-sections", "b.c", "-o", "b.o", cwd=d)
    _run("gcc", *flags, "c.c", "-o", "c.o", cwd=d)
    shutil.copy(d / "a.o", d / "long_object_name_here.o")
    _run("ar", "rcs", "liba.a", "a.o", "b.o", "long_object_name_here.o", cwd=d)
    _run("ar", "rcs", "libc.a", "c.o", "b.o", cwd=d)
    _run("gcc", "-O1", "main.c", "-o", "prog", cwd=d)
    _run("strip", "-o", "prog-stripped", "prog", cwd=d)
    return d


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("deepscope.data._paths.cache_dir", lambda: tmp_path / "cache")


def objdump_starts(path: Path) -> set[tuple[str, int]]:
    """(section, offset) of every function symbol, as objdump -t prints them."""
    out = subprocess.run(["objdump", "-t", str(path)], capture_output=True, text=True,
                         check=True).stdout
    starts = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[-4] == "F" and parts[-3].startswith(".text"):
            starts.add((parts[-3], int(parts[0], 16)))
    return starts


@pytest.mark.parametrize("name", ["a.o", "b.o", "c.o"])
def test_starts_match_objdump(built: Path, name: str) -> None:
    code = elf.read_elf((built / name).read_bytes(), name)
    ours = {(s.name, off) for s in code.sections for off in s.starts}
    assert ours == objdump_starts(built / name)
    assert code.has_symtab and code.machine == "x64"


def test_exact_offsets_aliases_and_function_sections(built: Path) -> None:
    a = elf.read_elf((built / "a.o").read_bytes(), "a.o")
    assert [(s.name, s.starts) for s in a.sections] == [(".text", (0, 4, 10, 24))]
    # add@0, square@4, use@10, target=alias@24: five symbols, four starts
    b = elf.read_elf((built / "b.o").read_bytes(), "b.o")
    assert [(s.name, s.starts) for s in b.sections] == [
        (".text.mul", (0,)), (".text.neg", (0,)), (".text.sum", (0,))]
    assert b.sections[1].data == bytes.fromhex("89f8f7d8c3")  # mov %edi,%eax; neg; ret


def test_archive_members_are_the_object_files(built: Path) -> None:
    found = list(ar.members((built / "liba.a").read_bytes(), "liba.a"))
    assert [m.name for m in found] == ["a.o", "b.o", "long_object_name_here.o"]
    for m in found:
        assert m.data == (built / m.name).read_bytes()


def test_archive_cut_between_members_is_truncated(built: Path) -> None:
    blob = (built / "liba.a").read_bytes()
    cut = blob[: blob.rfind(b"b.o/")]  # ends exactly where b.o's header starts
    with pytest.raises(DataCorruptError, match="truncated archive: its symbol index"):
        list(ar.members(cut, "liba.a"))
    with pytest.raises(DataCorruptError, match="not an ar archive"):
        list(ar.members(b"!<arc", "x.a"))


def test_executable_offsets_are_relative_to_their_section(built: Path) -> None:
    code = elf.read_elf((built / "prog").read_bytes(), "prog")
    text = next(s for s in code.sections if s.name == ".text")
    nm = subprocess.run(["nm", str(built / "prog")], capture_output=True, text=True).stdout
    main_addr = next(int(line.split()[0], 16) for line in nm.splitlines()
                     if line.endswith(" main"))
    sh = subprocess.run(["objdump", "-h", str(built / "prog")], capture_output=True,
                        text=True).stdout
    text_addr = next(int(line.split()[3], 16) for line in sh.splitlines()
                     if len(line.split()) > 3 and line.split()[1] == ".text")
    assert main_addr - text_addr in text.starts


def _build_small(built: Path, **kwargs) -> dict:
    return fs.build([built / "liba.a", built / "libc.a"], held_out=["libc.a"], progress=False,
                    **kwargs)


def _stream(ds: dd.Dataset, group: str) -> tuple[bytes, list[int]]:
    rows = ds.subset(np.flatnonzero(ds.groups == group))
    valid = rows.x != 0
    data = bytes((rows.x[valid] - 1).tolist())
    starts = torch.flatten(rows.y)[torch.flatten(valid)].nonzero().flatten().tolist()
    return data, starts


def test_build_windows_labels_and_split(built: Path) -> None:
    manifest = _build_small(built)
    train, test = dd.load("function-starts", "train"), dd.load("function-starts", "test")
    assert train.x.dtype == torch.int64 and train.x.shape[1] == 200
    assert train.y.shape == train.x.shape and train.modality == "sequence"
    assert train.info["vocab_size"] == 257 and train.info["max_length"] == 200
    assert set(train.groups) == {"liba.a"} and set(test.groups) == {"libc.a"}
    a = elf.read_elf((built / "a.o").read_bytes(), "a.o").sections[0]
    b = elf.read_elf((built / "b.o").read_bytes(), "b.o").sections
    # train: a.o's .text, b.o's three sections; the copy of a.o counts once
    data, starts = _stream(train, "liba.a")
    assert data == a.data + b"".join(s.data for s in b)
    offsets = [len(a.data) + sum(len(s.data) for s in b[:i]) for i in range(3)]
    assert starts == [*a.starts, *offsets]
    # test: b.o is in train (dropped), c.o's neg2 has neg's bytes (cut): only `other` is left
    c = elf.read_elf((built / "c.o").read_bytes(), "c.o").sections[0]
    assert _stream(test, "libc.a") == (c.data[: c.starts[1]], [0])
    splits = manifest["splits"]
    assert splits["train"]["duplicate_sections"] == 1
    assert splits["test"]["sections_in_train"] == 3
    assert splits["test"]["functions_cut_as_in_train"] == 1
    assert splits["train"]["functions"] == int(train.y.sum()) == 7
    assert splits["train"]["windows"] == len(train) == 1
    # padding: byte + 1 inside, 0 after the last code byte, label 0 there
    n = splits["train"]["bytes"]
    assert int(train.x[0, n - 1]) > 0 and not train.x[0, n:].any() and not train.y[0, n:].any()
    assert train.class_counts().tolist() == [n - 7, 7]
    recorded = {s["name"]: s for s in manifest["sources"]}
    assert recorded["liba.a"]["sha256"] == hashlib.sha256(
        (built / "liba.a").read_bytes()).hexdigest()
    assert recorded["libc.a"]["split"] == "test"


def test_windows_stride_and_padding(built: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.c"
    src.write_text("".join(f"int f{i}(int x) {{ return x * {i} + {i * 7}; }}\n"
                           for i in range(60)))
    _run("gcc", "-O1", "-c", "big.c", "-o", "big.o", cwd=tmp_path)
    fs.build([tmp_path / "big.o"], progress=False)
    ds = dd.load("function-starts", "train")
    code = elf.read_elf((tmp_path / "big.o").read_bytes(), "big.o").sections[0]
    k = -(-len(code.data) // 200)
    assert len(ds) == k and k > 1
    flat = ds.x.flatten()
    assert bytes((flat[: len(code.data)] - 1).tolist()) == code.data
    assert not flat[len(code.data):].any()
    assert ds.y.flatten().nonzero().flatten().tolist() == list(code.starts)
    assert len(dd.load("function-starts", "test")) == 0  # one source: no test split


def test_same_sources_same_arrays_and_atomic_pointer(built: Path) -> None:
    _build_small(built)
    first = dd.load("function-starts", "all")
    _build_small(built)
    second = dd.load("function-starts", "all")
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    builds = [p for p in (fs.cache_folder() / "builds").iterdir()]
    assert len(builds) == 1  # the older build is removed once the pointer moved


def test_changed_source_is_detected(built: Path, tmp_path: Path, runner_env) -> None:
    lib = tmp_path / "libc.a"
    shutil.copy(built / "libc.a", lib)
    fs.build([built / "liba.a", lib], held_out=["libc.a"], progress=False)
    assert {s.status for s in dd.verify("function-starts")} == {"ok"}
    shutil.copy(built / "a.o", tmp_path / "extra.o")
    _run("ar", "rs", "libc.a", "extra.o", cwd=tmp_path)
    statuses = {s.path.name: s.status for s in dd.verify("function-starts")}
    assert statuses == {"liba.a": "ok", "libc.a": "changed"}
    with pytest.raises(DataCorruptError, match=r"changed since the dataset was built.*libc\.a"):
        dd.load("function-starts", "test")
    result = runner_env(["data", "verify", "function-starts"])
    assert result.exit_code == 1 and "changed" in result.output
    listing = json.loads(runner_env(["data", "list", "--json"]).stdout)
    row = next(r for r in listing["datasets"] if r["dataset"] == "function-starts")
    assert row["corrupt"] == 1 and "CHANGED since the build: libc.a" in row["description"]


def test_seeded_split_of_user_sources() -> None:
    names = [f"lib{i}.a" for i in range(7)]
    first = binary.assign_splits(names, held_out=None, seed=3)
    assert first == binary.assign_splits(list(reversed(names)), held_out=None, seed=3)
    assert sum(s == "test" for s in first.values()) == 1  # round(0.2 * 7)
    assert binary.assign_splits(["only.a"], held_out=None, seed=0) == {"only.a": "train"}
    with pytest.raises(InputError, match=r"held-out name\(s\) nope.a match no source"):
        binary.assign_splits(names, held_out=["lib1.a", "nope.a"], seed=0)
    assert binary.assign_splits(names, held_out=["lib1.a", "nope.a"], seed=0,
                                strict=False)["lib1.a"] == "test"
    with pytest.raises(InputError, match="every source is held out"):
        binary.assign_splits(["a.a"], held_out=["a.a"], seed=0)


def test_default_sources_use_the_held_out_list(built: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    libdir = tmp_path / "multiarch"
    libdir.mkdir()
    shutil.copy(built / "liba.a", libdir / "liba.a")
    shutil.copy(built / "libc.a", libdir / "libz.a")  # a held-out name
    (libdir / "libm.a").write_text("/* GNU ld script */\nGROUP ( libm-2.36.a )\n")
    (libdir / "liblink.a").symlink_to("liba.a")
    monkeypatch.setattr(binary, "default_source_dir", lambda: libdir)
    test = dd.load("function-starts", "test", progress=False)  # nothing built: builds
    assert set(test.groups) == {"libz.a"}
    info = dd.DATASETS.get("function-starts").build_info()
    assert info["aliases"] == {"liblink.a": "liba.a"} and info["held_out"] == ["libz.a"]
    status = {s.path.name: s.status for s in dd.verify("function-starts")}
    assert status == {"liba.a": "ok", "libm.a": "ok", "libz.a": "ok"}
    shutil.copy(built / "liba.a", libdir / "libnew.a")
    assert {s.path.name: s.status for s in dd.verify("function-starts")}["libnew.a"] == "new"


# --- bad input: a DeepscopeError (API) / one line and exit 2 (CLI); nothing in the cache ---

def _bad_inputs(built: Path, tmp: Path) -> dict[str, tuple[Path, type, str]]:
    (tmp / "notes.txt").write_text("not object code\n")
    blob = (built / "liba.a").read_bytes()
    (tmp / "libcut.a").write_bytes(blob[: len(blob) // 2])
    (tmp / "empty").mkdir()
    obj = (built / "a.o").read_bytes()
    (tmp / "cut.o").write_bytes(obj[: len(obj) // 3])
    return {
        "non-ELF": (tmp / "notes.txt", DataCorruptError, "neither an ELF file nor an ar"),
        "stripped": (built / "prog-stripped", DataCorruptError, "is stripped"),
        "truncated archive": (tmp / "libcut.a", DataCorruptError, "truncated"),
        "truncated ELF": (tmp / "cut.o", DataCorruptError, "truncated or malformed ELF"),
        "empty directory": (tmp / "empty", DataMissingError, "holds no ELF file"),
        "absent": (tmp / "nope.a", DataMissingError, "does not exist"),
    }


@pytest.mark.parametrize("case", ["non-ELF", "stripped", "truncated archive", "truncated ELF",
                                  "empty directory", "absent"])
def test_bad_sources_raise_and_leave_the_cache_alone(built: Path, tmp_path: Path,
                                                     case: str) -> None:
    _build_small(built)
    before = (fs.cache_folder() / "current.json").read_text()
    path, error, fragment = _bad_inputs(built, tmp_path)[case]
    with pytest.raises(error, match=fragment):
        fs.build([built / "liba.a", path], progress=False)
    assert (fs.cache_folder() / "current.json").read_text() == before
    assert [p.name for p in (fs.cache_folder() / "builds").iterdir()] == [json.loads(before)[
        "build"]]  # no temp folder left behind
    assert len(dd.load("function-starts", "train")) == 1  # the previous build still loads


@pytest.mark.parametrize("case", ["non-ELF", "stripped", "truncated archive", "empty directory"])
def test_bad_sources_cli_one_line(built: Path, tmp_path: Path, case: str, runner_env,
                                  assert_one_line_error) -> None:
    path, _, fragment = _bad_inputs(built, tmp_path)[case]
    result = runner_env(["data", "build", "function-starts", "--sources", str(path), "--quiet"])
    assert_one_line_error(result, fragment)
    assert not (fs.cache_folder() / "current.json").exists()


def test_cli_build_with_several_sources(built: Path, runner_env) -> None:
    result = runner_env(["data", "build", "function-starts", "--sources", str(built / "liba.a"),
                         str(built / "libc.a"), "--held-out", "libc.a", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["held_out"] == ["libc.a"] and manifest["splits"]["train"]["functions"] == 7
    other = runner_env(["data", "build", "sst2"])
    assert other.exit_code == 2 and "no build step" in other.output


def test_a_stripped_member_is_skipped_in_the_default_sweep(built: Path, tmp_path: Path) -> None:
    _run("strip", "-o", str(tmp_path / "s.o"), str(built / "c.o"), cwd=tmp_path)
    _run("ar", "rcs", "libs.a", "s.o", cwd=tmp_path)
    src = binary.user_sources([tmp_path / "libs.a"])[0]
    code = binary.read_source(src, strict=False)
    assert code.status == "stripped" and code.stripped_members == 1
    with pytest.raises(DataCorruptError, match="is stripped"):
        binary.read_source(src, strict=True)


@pytest.fixture
def runner_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Invoke the CLI with the private cache of this test."""
    from typer.testing import CliRunner

    from deepscope.cli.main import app

    monkeypatch.setenv("DEEPSCOPE_CACHE", str(tmp_path / "cache"))
    return lambda args: CliRunner().invoke(app, args)


@pytest.fixture
def assert_one_line_error():
    def check(result, *fragments: str) -> None:
        assert result.exit_code == 2, result.output
        text = result.output.strip()
        assert "Traceback" not in text and len(text.splitlines()) == 1, text
        assert text.startswith("error:"), text
        for frag in fragments:
            assert frag in text, text

    return check


@pytest.mark.slow
def test_full_default_build_of_this_machine(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """The real build over the machine's static libraries (about 15-20 s here)."""
    try:
        binary.default_source_dir()
    except DataMissingError:
        pytest.skip("no static libraries on this machine")
    manifest = fs.build(progress=False)
    train, test = dd.load("function-starts", "train"), dd.load("function-starts", "test")
    assert manifest["splits"]["train"]["windows"] == len(train) > 50_000
    assert manifest["splits"]["test"]["windows"] == len(test) > 5_000
    assert not set(train.groups) & set(test.groups)
    assert set(test.groups) <= set(binary.HELD_OUT)
    assert int(test.y.sum()) == manifest["splits"]["test"]["functions"] > 3_000


@pytest.mark.parametrize("name", ["a.o", "prog", "liba.a"])
def test_damaged_files_fail_only_with_data_errors(built: Path, name: str) -> None:
    """Bytes flipped at random (seeded): either a parse or a DataCorruptError, nothing else."""
    import random

    blob = (built / name).read_bytes()
    rng = random.Random(0)
    for _ in range(300):
        damaged = bytearray(blob)
        for _ in range(rng.randrange(1, 8)):
            damaged[rng.randrange(8, len(damaged))] = rng.randrange(256)
        try:
            found = (list(ar.members(bytes(damaged), name)) if name.endswith(".a")
                     else [ar.Member(name, bytes(damaged))])
            for member in found:
                if elf.is_elf(member.data):
                    elf.read_elf(member.data, member.name)
        except DataCorruptError:
            pass


def test_unreadable_cache_is_reported_not_raised(built: Path, runner_env) -> None:
    _build_small(built)
    (fs.cache_folder() / "current.json").write_text("{not json")
    assert [s.status for s in dd.verify("function-starts")] == ["corrupt"]
    result = runner_env(["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout)["datasets"] if r["dataset"] ==
               "function-starts")
    assert "cache is unreadable" in row["description"]
    with pytest.raises(DataCorruptError, match="data build function-starts"):
        dd.load("function-starts", "train")
    _build_small(built)  # a rebuild repairs it
    assert {s.status for s in dd.verify("function-starts")} == {"ok"}
