#!/usr/bin/env bash
# Set everything up, then run ruff, mypy --strict and the whole test suite (unit, kernel,
# netns, property tiers).
# Kernel tests need root; with ETRAN_REQUIRE_KERNEL=1 a missing capability fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Static checks first: a lint or type error fails the run (rules in pyproject.toml).
.venv/bin/ruff check --quiet .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
