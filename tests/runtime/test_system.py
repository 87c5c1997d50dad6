"""Machine-level helpers: the kernel-support probe, CPU count, bpffs, pinning, and the
``kernel`` fixture's skip-or-fail rule."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from etran.runtime import (
    BpfError,
    Map,
    NotSupported,
    check_kernel_support,
    ensure_bpffs,
    get_pinned,
    load_object,
    possible_cpus,
)
from etran.runtime import libbpf as lb

from .irobjects import HASH, MapDef, build_object, xdp_return

ROOT = Path(__file__).resolve().parents[2]


def test_check_kernel_support_passes(kernel: None) -> None:
    check_kernel_support()


def test_possible_cpus_matches_sysfs(kernel: None) -> None:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    assert possible_cpus() == count


@pytest.mark.parametrize("err,feature", [(1, "CAP_BPF/root"), (13, "CAP_BPF/root"),
                                         (38, "bpf(2) syscall")])
def test_probe_failures_name_the_missing_feature(monkeypatch: pytest.MonkeyPatch, err: int,
                                                 feature: str) -> None:
    def refuse(*_args: object) -> int:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(lb, "map_create", refuse)
    with pytest.raises(NotSupported) as caught:
        check_kernel_support()
    assert caught.value.feature == feature
    assert str(caught.value).startswith(f"check kernel support: {feature} is not available: ")


def test_missing_libbpf_is_not_supported() -> None:
    code = textwrap.dedent("""
        import etran.runtime.libbpf as lb
        from etran.runtime import NotSupported, check_kernel_support
        lb.LIBRARY_NAME = "libbpf-absent.so.9"
        try:
            check_kernel_support()
        except NotSupported as exc:
            print(exc.feature, "|", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.startswith("libbpf-absent.so.9 | check kernel support: libbpf-absent.so.9 is "
                          "not available: cannot load it")


@pytest.fixture
def bpffs(kernel: None, tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "bpffs"
    ensure_bpffs(str(mount_point))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_ensure_bpffs_mounts_once(bpffs: Path) -> None:
    mounts = Path("/proc/self/mounts").read_text()
    assert f" {bpffs} bpf " in mounts
    ensure_bpffs(str(bpffs))  # already mounted: nothing happens
    assert Path("/proc/self/mounts").read_text().count(f" {bpffs} bpf ") == 1


def test_pin_and_reopen(bpffs: Path) -> None:
    elf = build_object(xdp_return(2, "pinned_prog"), [MapDef("pinned_map", HASH, 8, 4, 8)])
    with load_object(elf) as obj:
        obj.maps["pinned_map"].update(b"\x01\0\0\0", b"\x2a" + bytes(7))
        obj.maps["pinned_map"].pin(str(bpffs / "map"))
        obj.programs["pinned_prog"].pin(str(bpffs / "prog"))
        with pytest.raises(BpfError) as caught:
            obj.maps["pinned_map"].pin(str(bpffs / "map"))
        assert caught.value.errno == 17  # EEXIST
    # the pins keep both alive after the object closed
    with Map.from_pinned(str(bpffs / "map")) as reopened:
        assert (reopened.name, reopened.type_name, reopened.key_size, reopened.value_size,
                reopened.max_entries) == ("pinned_map", "hash", 4, 8, 8)
        assert reopened.lookup(b"\x01\0\0\0") == b"\x2a" + bytes(7)
    assert reopened.closed
    fd = get_pinned(str(bpffs / "prog"))
    os.close(fd)
    with pytest.raises(BpfError) as missing:
        get_pinned(str(bpffs / "absent"))
    assert missing.value.errno == 2 and "open pinned object" in str(missing.value)
    os.unlink(bpffs / "map")
    os.unlink(bpffs / "prog")


FAKE_PLUGIN = """
import etran.runtime.loader as loader
from etran.runtime.errors import NotSupported

def refuse() -> None:
    raise NotSupported("CAP_BPF/root", "pretend we are not root")

loader.check_kernel_support = refuse
"""


@pytest.mark.parametrize("require,outcome", [("", "1 skipped"), ("1", "1 error")])
def test_kernel_fixture_skips_or_fails(tmp_path: Path, require: str, outcome: str) -> None:
    (tmp_path / "fake_no_kernel.py").write_text(FAKE_PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "ETRAN_REQUIRE_KERNEL": require}
    target = "tests/runtime/test_system.py::test_check_kernel_support_passes"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "fake_no_kernel", "-rs", "-q",
                          "-p", "no:cacheprovider", target], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert outcome in run.stdout, run.stdout
    assert "CAP_BPF/root is not available: pretend we are not root" in run.stdout
