"""Runtime-test fixtures: every test here must leave the process's fd table as it found it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def open_fds() -> dict[int, str]:
    """{fd: what it points at}; leaves out the descriptor listdir used to read the directory."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # listdir's own descriptor, closed by now
            pass
    return fds


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    before = open_fds()
    yield
    after = open_fds()
    leaked = {fd: target for fd, target in after.items() if before.get(fd) != target}
    assert not leaked, f"file descriptors leaked: {leaked}"
