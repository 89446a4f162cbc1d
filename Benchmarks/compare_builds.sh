#!/usr/bin/env bash
# Times two builds of `optim` side by side in alternating rounds (old, new; then new, old; ...),
# so that both see the same machine state, and prints per configuration the median over rounds
# of each build's median ms per step and whether the final parameters' checksums agree.
#
#     Benchmarks/compare_builds.sh OLD_OPTIM NEW_OPTIM ROUNDS OUT.jsonl [bench options...]
#
# Bench options default to Adam and SGD on one100, tiny10k and resnet50, 1 and 2 threads,
# both backends, foreach.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 OLD_OPTIM NEW_OPTIM ROUNDS OUT.jsonl [bench options...]" >&2; exit 2; }
old=$1 new=$2 rounds=$3 out=$4
shift 4
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(--optimizer adam,sgd --workload one100,tiny10k,resnet50 --threads 1,2
    --backend dispatch,openmp --implementation foreach --steps 30 --warmup 3)
: > "$out"
run() {  # build-name binary round
    "$2" bench "${options[@]}" --no-probe --format json |
        python3 -c 'import json,sys
for line in sys.stdin:
    if not line.startswith("{"): continue
    row = json.loads(line); row["build"] = sys.argv[1]; row["round"] = int(sys.argv[2]); print(json.dumps(row))' "$1" "$3" >> "$out"
}
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then run old "$old" "$round"; run new "$new" "$round"
    else run new "$new" "$round"; run old "$old" "$round"; fi
done
python3 - "$out" <<'PY'
import collections, json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
table = collections.defaultdict(lambda: collections.defaultdict(list))
sums = collections.defaultdict(set)
for r in rows:
    key = (r["optimizer"], r["workload"], r["threads"], r["backend"])
    table[key][r["build"]].append(r["ms_per_step_median"])
    sums[key].add(r["checksum"])
print("| optimizer | workload | threads | backend | old ms | new ms | new / old | checksums |")
print("|---|---|---|---|---|---|---|---|")
for key, builds in table.items():
    old, new = statistics.median(builds["old"]), statistics.median(builds["new"])
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {old:.4g} | {new:.4g} | {new / old:.2f} | "
          f"{'equal' if len(sums[key]) == 1 else 'DIFFER'} |")
PY
