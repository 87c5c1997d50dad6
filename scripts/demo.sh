#!/usr/bin/env bash
# Set everything up (system packages, project venv), then run the main job:
# check, build, verify and run the DCTCP example, kernel and interpreter side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/etran demo "$@"
