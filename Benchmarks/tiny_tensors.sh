#!/usr/bin/env bash
# Many small tensors against one: float32 Adam at 2 threads over tiny10k (10,000 tensors of 100
# elements, each allocated on its own), tiny10k-packed (the same tensors cut one after another
# from one buffer, their gradients from another) and flat1m (the same million elements in one tensor), the engine's bandwidth probe
# over one million elements (Adam's traffic, no arithmetic), and the C floor
# (peers/tensor_floor.c: a vectorized loop over one array and over 10,000 separate arrays, with
# nothing else, asking ahead for the next tensors' lines or not), in alternating rounds in one
# invocation; the by-kind layout also with 200 bytes of other allocations before each parameter
# and gradient array, as a program's objects stand between its tensors. Prints every raw line, then the medians over rounds of each contender's median
# and the ratios the docs quote.
#
#   Benchmarks/tiny_tensors.sh [rounds]        (default 5; needs `swift build -c release`)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
optim=.build/release/optim
[ -x "$optim" ] || { echo "build first: swift build -c release" >&2; exit 1; }
mkdir -p .build-peers
floor=.build-peers/tensor_floor
gcc -O3 -march=native -fno-math-errno -fopenmp -std=c11 -Wall -Wextra Benchmarks/peers/tensor_floor.c -o "$floor" -lm

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for round in $(seq "$rounds"); do
    echo "# round $round" | tee -a "$raw"
    "$optim" bench --optimizer adam --workload tiny10k,tiny10k-packed,flat1m --threads 2 --backend dispatch,openmp \
        --implementation foreach --steps 100 --warmup 5 --no-probe --format json | grep '^{' | tee -a "$raw"
    for backend in dispatch openmp; do
        "$optim" probe --elements 1000000 --threads 2 --backend "$backend" --repetitions 100 |
            awk -v b="$backend" 'NR > 1 { printf "{\"probe\":\"%s\",\"us_median\":%s,\"us_min\":%s}\n", b, $5, $6 }' |
            tee -a "$raw"
    done
    "$floor" --threads 2 --reps 100 | tail -n 8 | tee -a "$raw"
    # The by-kind layout again with 200 bytes of other objects before each parameter and gradient.
    "$floor" --threads 2 --reps 100 --spacer 200 | grep '"tensors by kind"' | tail -n 2 | tee -a "$raw"
done

python3 - "$raw" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
groups = {}
for r in rows:
    if "workload" in r:
        key, ms = f"optim adam {r['workload']} {r['backend']}", r["ms_per_step_median"]
    elif "probe" in r:
        key, ms = f"optim probe 1M {r['probe']}", r["us_median"] / 1000
    else:
        ahead = r["prefetch_ahead"]
        label = f", asking {ahead} ahead for {r['prefetched_bytes']} bytes" if ahead else ""
        spacer = f", {r['spacer']} bytes of other objects before each parameter and gradient" if r.get("spacer") else ""
        key, ms = f"C floor, {r['layout']}{spacer}{label}", r["ms_median"]
    groups.setdefault(key, []).append(ms)
median = {k: statistics.median(v) for k, v in groups.items()}
print("\n| contender | median ms (of per-round medians) | min | max | rounds |")
print("|---|---|---|---|---|")
for k, v in groups.items():
    print(f"| {k} | {median[k]:.3f} | {min(v):.3f} | {max(v):.3f} | {len(v)} |")
print()
for backend in ("dispatch", "openmp"):
    flat, probe = median.get(f"optim adam flat1m {backend}"), median.get(f"optim probe 1M {backend}")
    for name in ("tiny10k", "tiny10k-packed"):
        tiny = median.get(f"optim adam {name} {backend}")
        if tiny and flat and probe:
            print(f"{backend}: {name} / probe = {tiny / probe:.2f}x, {name} / flat1m = {tiny / flat:.2f}x, "
                  f"flat1m / probe = {flat / probe:.2f}x, ({name} - flat1m) / 10,000 tensors = "
                  f"{(tiny - flat) * 1e6 / 10000:.0f} ns per tensor")
one = median.get("C floor, one array")
for key, many in median.items():
    if one and key.startswith("C floor, tensors"):
        print(f"{key}: / one array = {many / one:.2f}x, {(many - one) * 1e6 / 10000:.0f} ns per tensor beyond it")
EOF
