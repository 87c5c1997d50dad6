"""The stack depth etran reads from a compiled object (etran.backend.stack) is the one the
kernel verifier reports, for every program of every example."""
from __future__ import annotations

from pathlib import Path

import pytest

from etran.backend.objfile import read_object
from etran.backend.stack import stack_depth
from etran.pipeline import compile_file
from etran.runtime.loader import load_object

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_frame_depth_is_the_kernels(kernel: None, path: Path) -> None:
    compiled = compile_file(path)
    obj = read_object(compiled.elf)
    with load_object(compiled.elf) as loaded:
        for code in obj.programs:
            assert stack_depth(code) == loaded.programs[code.name].stats.stack_depth[0], code.name
