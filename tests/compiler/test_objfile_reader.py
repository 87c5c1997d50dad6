"""`etran.backend.objfile` reads ELF itself; it reads every object as pyelftools did.

The reference is the module's former reader on pyelftools (`objfile_pyelftools.py`). Both read
every example and transport compiled (with and without observation probes), the hand-made
objects of the disassembler tests in both byte orders, and damaged copies: the results are
equal, and where the bytes are not an object ours raises ObjectFileError.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from etran.backend.objfile import ObjectFile, ObjectFileError, read_object
from etran.dsl.diagnostics import DiagnosticError
from etran.pipeline import compile_source
from tests.compiler.irobjects_disasm import calls_object, data_object, flow_object
from tests.compiler.objfile_pyelftools import read_object_pyelftools

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("examples/*.py"), *ROOT.glob("etran/transports/*.py"),
                  *ROOT.glob("tests/data/*.py")])


@cache
def compiled(path: Path, observe: bool) -> bytes | None:
    try:
        return compile_source(path.read_text(), str(path), observe=observe).elf
    except DiagnosticError:  # a module other transports import, not a program of its own
        return None


HANDMADE: dict[str, Callable[[], bytes]] = {
    "flow": lambda: flow_object(False), "flow-bpfeb": lambda: flow_object(True),
    "calls": lambda: calls_object(False), "calls-bpfeb": lambda: calls_object(True),
    "data": data_object,
}


@pytest.mark.parametrize("observe", [False, True])
@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_compiled_objects_read_the_same(path: Path, observe: bool) -> None:
    elf = compiled(path, observe)
    if elf is None:
        pytest.skip(f"{path.name} is not a program of its own")
    ours = read_object(elf)
    assert ours == read_object_pyelftools(elf)
    assert ours.programs and ours.line_info


@pytest.mark.parametrize("name", HANDMADE)
def test_handmade_objects_read_the_same(name: str) -> None:
    elf = HANDMADE[name]()
    assert read_object(elf) == read_object_pyelftools(elf)


@pytest.mark.parametrize("name", ["flow", "calls-bpfeb", "examples/dctcp.py"])
def test_damaged_objects(name: str) -> None:
    """Cut short or with a byte changed: the same object, or ObjectFileError from ours (where
    pyelftools sometimes let an IndexError or AssertionError through)."""
    elf = HANDMADE[name]() if name in HANDMADE else compiled(ROOT / name, False)
    assert elf is not None
    rng = random.Random(name)
    damaged = [elf[:n] for n in [*range(0, 72, 3), *rng.sample(range(len(elf)), 40)]]
    for _ in range(300):
        copy = bytearray(elf)
        copy[rng.randrange(len(copy))] = rng.randrange(256)
        damaged.append(bytes(copy))
    for data in damaged:
        try:
            ours: ObjectFile | None = read_object(data)
        except ObjectFileError as err:
            if "larger than the file" in str(err) or "run past their block" in str(err):
                continue  # pyelftools, or the old reader's loop, would try to allocate it
            ours = None
        try:
            theirs: ObjectFile | None = read_object_pyelftools(data)
        except Exception:  # ObjectFileError, or pyelftools' own failures on bad input
            theirs = None
        assert ours == theirs


def test_not_elf_messages() -> None:
    for data, message in [(b"", "Magic number does not match"), (b"\x7fELF", "Invalid EI_CLASS"),
                          (b"\x7fELF\x02\x03", "Invalid EI_DATA 3")]:
        with pytest.raises(ObjectFileError, match=message):
            read_object(data)


def test_a_huge_record_count_is_refused_not_allocated() -> None:
    """Every 32-bit word of DCTCP's .BTF.ext set to 0x7fffffff in turn (a record size, a
    count, an offset): the reader returns or raises ObjectFileError, and never builds a
    record per count (a damaged count once made it allocate until the machine ran out)."""
    import io

    from elftools.elf.elffile import ELFFile
    elf = compiled(ROOT / "examples" / "dctcp.py", False)
    assert elf is not None
    ext = ELFFile(io.BytesIO(elf)).get_section_by_name(".BTF.ext")
    start, size = ext["sh_offset"], ext["sh_size"]
    refused = 0
    for off in range(start, start + size - 3, 4):
        copy = bytearray(elf)
        copy[off:off + 4] = (0x7FFFFFFF).to_bytes(4, "little")
        try:
            read_object(bytes(copy))
        except ObjectFileError:
            refused += 1
    assert refused > 0
