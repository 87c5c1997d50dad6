"""Fixtures shared by every test tier.

``kernel``: a test that loads programs into the running kernel asks for it. It skips with the runtime's
``NotSupported`` message (which names what is missing), and turns that skip into a failure
when ``ETRAN_REQUIRE_KERNEL=1`` (CI), so a kernel test can never pass by not running.

Hypothesis keeps no example database here: a failure saved by an earlier run would be
replayed first and make the result depend on the machine's history (the properties that
must be reproducible are derandomized instead).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from etran.runtime.errors import NotSupported
from etran.runtime.loader import check_kernel_support

settings.register_profile("etran", database=None)
settings.load_profile("etran")


def _require(check: Callable[[], None]) -> None:
    try:
        check()
    except NotSupported as exc:
        if os.environ.get("ETRAN_REQUIRE_KERNEL") == "1":
            pytest.fail(f"ETRAN_REQUIRE_KERNEL=1 but the kernel is not usable: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def kernel() -> None:
    _require(check_kernel_support)


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all"]


@pytest.fixture(scope="session")
def unprivileged() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run `python -c CODE ARGS...` as nobody with no capabilities, on a copy of etran.

    The checkout, its virtual environment and the interpreter may sit under directories
    only root can enter (a clone under `mktemp -d`, a pyenv under /root), so the copy (with
    the pure-Python packages the commands import) goes to a directory anyone can read, and
    the interpreter is the first that nobody can start: the outcome does not depend on
    where the project was cloned."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    import lark
    import pyroute2
    root = Path(__file__).resolve().parents[1]
    stage = Path(tempfile.mkdtemp(prefix="etran-unprivileged-", dir="/tmp"))
    try:
        shutil.copytree(root / "etran", stage / "etran",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for package in (lark, pyroute2):
            src = Path(package.__file__).parent
            shutil.copytree(src, stage / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        for path in [stage, *stage.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
        env = {**os.environ, "PYTHONPATH": str(stage), "PYTHONDONTWRITEBYTECODE": "1"}
        candidates = [sys.executable, os.path.realpath(sys.executable), shutil.which("python3")]
        python = next((c for c in candidates if c and subprocess.run(
            [*NOBODY, c, "-c", "import etran.abi"], cwd=stage, env=env,
            capture_output=True).returncode == 0), None)
        if python is None:
            pytest.fail("no Python interpreter that an unprivileged user can start was found")

        def run(code: str, *argv: str, netns: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
            """`netns`: entered (as root, as `ip netns exec` does) before becoming nobody."""
            inside = ["ip", "netns", "exec", netns] if netns else []
            return subprocess.run([*inside, *NOBODY, python, "-c", code, *argv], cwd=stage,
                                  text=True, capture_output=True, env=env, timeout=timeout)

        yield run
    finally:
        shutil.rmtree(stage, ignore_errors=True)
