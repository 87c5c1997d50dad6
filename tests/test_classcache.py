"""`etran.classcache`: the dataclasses' generated methods compiled once and kept between
processes. The classes must behave exactly as without it, and a missing, stale or
corrupt cache must only cost the compile."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from etran import classcache

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache kept in `tmp_path`, and bytecode writing allowed."""
    path = tmp_path / "cache" / "dataclass-code.marshal"
    monkeypatch.setattr(classcache, "_PATH", path)
    monkeypatch.setattr(classcache, "_code", {})
    monkeypatch.setattr(classcache, "_new", 0)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return path


def _point(create_fn: object) -> type:
    """The same frozen, slotted class, its methods written by `create_fn`."""
    saved = dataclasses._create_fn  # type: ignore[attr-defined]
    dataclasses._create_fn = create_fn  # type: ignore[attr-defined]
    try:
        @dataclasses.dataclass(frozen=True, slots=True, order=True)
        class Point:
            x: int
            y: int = 2
            tags: tuple[str, ...] = dataclasses.field(default=(), compare=False)
        return Point
    finally:
        dataclasses._create_fn = saved  # type: ignore[attr-defined]


def test_a_class_behaves_as_without_the_cache(fresh: Path) -> None:
    plain = _point(classcache._ORIGINAL)
    cached = _point(classcache._create_fn)
    assert classcache._new > 0      # the cached class's methods were compiled here
    assert repr(plain(1, 5, ("t",))) == repr(cached(1, 5, ("t",)))
    for make in (plain, cached):
        p = make(1)
        assert (p.x, p.y, p.tags) == (1, 2, ())
        assert repr(p).endswith("Point(x=1, y=2, tags=())")
        assert p == make(1, 2, ("a",)) and hash(p) == hash(make(1, 2, ("b",)))
        assert p < make(1, 3) and p != make(2)
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 5  # type: ignore[misc]
        assert not hasattr(p, "__dict__")


def test_the_code_is_kept_for_the_next_process(fresh: Path) -> None:
    _point(classcache._create_fn)
    compiled = classcache._new
    assert compiled > 0
    classcache._save()
    assert fresh.exists()
    classcache._code.clear()
    classcache._new = 0
    classcache._load()
    _point(classcache._create_fn)
    assert classcache._new == 0 and len(classcache._code) >= compiled


def test_a_corrupt_cache_only_costs_the_compile(fresh: Path) -> None:
    fresh.parent.mkdir()
    fresh.write_bytes(b"\x00not marshal data")
    classcache._load()
    assert classcache._code == {}
    p = _point(classcache._create_fn)(3)
    assert p.x == 3 and classcache._new > 0


def test_nothing_is_written_when_python_may_not_write_bytecode(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _point(classcache._create_fn)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    classcache._save()
    assert not fresh.exists()


def test_a_command_runs_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    """`etran check --source-only` in two processes: the second runs on the code the first
    kept; both print the same report."""
    probe = ("import sys\nfrom etran import classcache\n"
             f"classcache._PATH = __import__('pathlib').Path({str(tmp_path / 'c.marshal')!r})\n"
             "classcache._code.clear()\nclasscache._load()\n"
             "from etran.cli.main import main\n"
             "code = main(['check', '--source-only', 'examples/dctcp.py'])\n"
             "print('compiled', classcache._new, file=sys.stderr)\nsys.exit(code)\n")
    env = {"PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                           env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and "rx:" in runs[0].stdout
    assert runs[1].stderr.strip() == "compiled 0", runs[1].stderr
