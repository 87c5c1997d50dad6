"""Fixtures shared by every test tier.

``kernel``: a test that loads programs into the running kernel asks for it. It skips with the
runtime's ``NotSupported`` message (which names what is missing), and turns that skip into a
failure when ``ETRAN_REQUIRE_KERNEL=1`` (CI), so a kernel test can never pass by not running.
"""

from __future__ import annotations

import os

import pytest

from etran.runtime.errors import NotSupported
from etran.runtime.loader import check_kernel_support


@pytest.fixture(scope="session")
def kernel() -> None:
    try:
        check_kernel_support()
    except NotSupported as exc:
        if os.environ.get("ETRAN_REQUIRE_KERNEL") == "1":
            pytest.fail(f"ETRAN_REQUIRE_KERNEL=1 but the kernel is not usable: {exc}")
        pytest.skip(str(exc))
