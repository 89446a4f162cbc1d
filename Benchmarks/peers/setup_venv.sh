#!/usr/bin/env bash
# Create (or reuse) the virtual environment that holds the benchmark peers
# (PyTorch, DeepSpeed) and install Benchmarks/peers/requirements.txt into it.
#
#   OPTIM_PEER_VENV   where the venv lives (default: <repo>/.venv-peers)
#   PYTHON            interpreter used to create it (default: python3)
#
# Idempotent: when the venv exists, its stamp matches the requirements file and
# the peers import, it does nothing. Pass --force to reinstall.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${OPTIM_PEER_VENV:-$repo/.venv-peers}"
python="${PYTHON:-python3}"
req="$here/requirements.txt"
stamp="$venv/.optim-peers-stamp"
force=0
[[ "${1:-}" == "--force" ]] && force=1

want="$(sha256sum "$req" | cut -d' ' -f1) $("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

imports_ok() {
    DS_ACCELERATOR=cpu "$venv/bin/python" - <<'PY' >/dev/null 2>&1
import torch, deepspeed, cpuinfo, numpy
from deepspeed.ops.adam import DeepSpeedCPUAdam
PY
}

if [[ $force -eq 0 && -x "$venv/bin/python" && -f "$stamp" ]] \
        && [[ "$(cat "$stamp")" == "$want" ]] && imports_ok; then
    echo "peer venv up to date: $venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv: $venv"
    "$python" -m venv "$venv"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
"$venv/bin/python" -m pip install --quiet --upgrade pip
# DeepSpeed: build no ops at install time; the CPU Adam kernel is JIT-built on first use.
DS_BUILD_OPS=0 DS_ACCELERATOR=cpu \
    "$venv/bin/python" -m pip install --requirement "$req"

if ! imports_ok; then
    echo "error: peers do not import from $venv" >&2
    DS_ACCELERATOR=cpu "$venv/bin/python" -c 'import torch, deepspeed; from deepspeed.ops.adam import DeepSpeedCPUAdam' || true
    exit 1
fi
echo "$want" > "$stamp"
"$venv/bin/python" - <<'PY'
import torch
print("torch", torch.__version__, "| threads", torch.get_num_threads(),
      "| cpu capability", torch.backends.cpu.get_cpu_capability())
PY
echo "peer venv ready: $venv ($(du -sh "$venv" | cut -f1))"
