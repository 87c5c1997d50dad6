#!/usr/bin/env bash
# Set up everything etran needs on a fresh Debian machine, idempotently:
# system packages (libbpf, bpftool, iproute2) when missing, then a project
# virtual environment in .venv with etran installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -e /usr/lib/x86_64-linux-gnu/libbpf.so.1 ] || ldconfig -p 2>/dev/null | grep -q 'libbpf.so.1 ' || need+=(libbpf1)
command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "etran setup: missing system packages: ${need[*]}; run this script as root (it uses apt-get)" >&2
        exit 2
    fi
    echo "etran setup: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.etran-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    # pip's warnings about absent local mirrors are noise here; real errors still fail the script.
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2> >(grep -v "is ignored: it is neither" >&2)
    touch "$stamp"
fi
