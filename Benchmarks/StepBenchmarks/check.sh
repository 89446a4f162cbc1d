#!/usr/bin/env bash
# Runs the step benchmarks (latency and mallocs per step; see Docs/benchmarks.md) and fails when a
# step allocates. Arguments go to the benchmark plugin, for example `--filter 'Adam.*'`.
set -euo pipefail
cd "$(dirname "$0")"

# `thresholds check` compares each benchmark's p90 with a static threshold file of its own.
# The files are written here from the suite's own list of benchmarks, which the optimizer
# catalog decides, so that a benchmark without a file cannot slip through unchecked.
thresholds=.build/no-allocation-thresholds
rm -rf "$thresholds"
mkdir -p "$thresholds"
target=OptimizerSteps
listing=.build/step-benchmarks-list.log
swift package --disable-sandbox benchmark list > "$listing" 2>&1 ||
    { grep -v '^\[' "$listing" | tail -n 40 >&2; echo "the step benchmarks did not build" >&2; exit 1; }
names=$(sed -n "/^Target '$target' available benchmarks:/,/^\$/p" "$listing" | sed '1d;/^$/d')
[ -n "$names" ] || { echo "the step benchmarks listed no benchmark" >&2; exit 1; }
while IFS= read -r name; do
    echo '{ "mallocCountTotal" : 0 }' > "$thresholds/$target.$name.p90.json"
done <<< "$names"
echo "$(echo "$names" | wc -l) benchmarks, each allowed 0 mallocs per step"

# One run, stored as the baseline "steps" (its table: latency and mallocs per step, by
# percentile), then checked against the thresholds without running again.
swift package --disable-sandbox --allow-writing-to-package-directory benchmark baseline update steps \
    --no-progress "$@" 2>&1 | grep -v '^\['
table=.build/step-benchmarks-table.md
swift package --disable-sandbox benchmark baseline read steps --no-progress --format markdown "$@" 2>&1 |
    grep -v '^\[' | tee "$table"
# The plugin's check below reads p90 only, which an allocation every tenth step would pass: the
# table's p100 column is the most any step allocated, and every benchmark must show 0 there.
# Counting the rows makes a change of the table's format fail here rather than pass unread.
awk -F'|' -v expected="$(echo "$names" | wc -l)" '
    /^\| Malloc \(total\)/ { rows++; most = $9; gsub(/ /, "", most); if (most != "0") { bad++; print "a step allocated: " $0 } }
    END {
        if (rows != expected) { print "found " rows " malloc rows for " expected " benchmarks"; exit 1 }
        if (bad) exit 1
        print rows " benchmarks: no step allocated (the most, p100, is 0 in every one)"
    }' "$table"
swift package --disable-sandbox benchmark thresholds check steps --path "$thresholds" --no-progress "$@" 2>&1 |
    grep -v '^\['
