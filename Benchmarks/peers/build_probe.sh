#!/usr/bin/env bash
# Build the C step probe (step_probe.c, the bandwidth ceiling of a step) into a git-ignored folder.
#
#   OPTIM_PEER_BUILD   output folder (default: <repo>/.build-peers)
#   CC                 compiler (default: gcc)
#
# Prints the path of the binary on its last line. Rebuilds only when the source
# or this script is newer than the binary (pass --force to always rebuild).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out_dir="${OPTIM_PEER_BUILD:-$repo/.build-peers}"
cc="${CC:-gcc}"
src="$here/step_probe.c"
bin="$out_dir/step_probe"

mkdir -p "$out_dir"
if [[ "${1:-}" == "--force" || ! -x "$bin" || "$src" -nt "$bin" || "${BASH_SOURCE[0]}" -nt "$bin" ]]; then
    "$cc" -O3 -march=native -fopenmp -std=c11 -Wall -Wextra "$src" -o "$bin" -lm >&2
fi
echo "$bin"
