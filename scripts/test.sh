#!/usr/bin/env bash
# Set everything up, then run the whole test suite (unit, kernel, netns, property tiers).
# Kernel tests need root; with ETRAN_REQUIRE_KERNEL=1 a missing capability fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
