"""Fixtures shared by every test tier.

``kernel``: a test that loads programs into the running kernel asks for it (``live_frames``
too, when it sends frames through live-frames runs). It skips with the runtime's
``NotSupported`` message (which names what is missing), and turns that skip into a failure
when ``ETRAN_REQUIRE_KERNEL=1`` (CI), so a kernel test can never pass by not running.

Hypothesis keeps no example database here: a failure saved by an earlier run would be
replayed first and make the result depend on the machine's history (the properties that
must be reproducible are derandomized instead).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import settings

from etran.runtime.errors import NotSupported
from etran.runtime.inject import check_live_frames
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


@pytest.fixture(scope="session")
def live_frames(kernel: None) -> None:
    """For tests that send frames with live-frames runs (@egress, @gen, injection)."""
    _require(check_live_frames)
