#!/usr/bin/env python3
"""Side-by-side benchmark: swift-optim's `optim bench` against its peers (PyTorch's
fused optimizer, DeepSpeed's CPU Adam) and the C step probe, in alternating
rounds within one invocation, so that all contenders see the same machine state.

For round in 1..R, for each workload, it runs each contender once, forward in odd
rounds and in reverse order in even rounds:

  ours    <repo>/.build/release/optim bench --optimizer O --workload W --threads T
              --backend dispatch,openmp --implementation foreach --dtype float32
              --steps N --format json          (one row per backend)
  peers   <venv>/bin/python Benchmarks/peers/peer_bench.py ... --peer P
              (one process per peer and workload, so memory is freed)
  probe   .build-peers/step_probe --optimizer O --elements <workload's parameter count>
              --threads T --reps N             (adam, adamw, rmsprop, adagrad, sgd)

Every raw row goes to a JSONL file (--out); at the end a markdown table gives, per
workload and contender, the median over rounds of the per-run median ms per step, the
min and max of those, and for our rows the speed-up over the faster peer (peer ms /
ours ms, the faster peer being the one with the lower median) and over the probe
(probe ms / ours ms). `--summarize FILE` prints the table of an earlier run.

Setup: `Benchmarks/peers/setup_venv.sh` (peer venv), `swift build -c release`
(ours); the probe is built on demand with `Benchmarks/peers/build_probe.sh`.
A missing binary or venv is reported and that contender skipped; the rest still run.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS_DIR = os.path.join(HERE, "peers")
sys.path.insert(0, PEERS_DIR)
import peer_bench  # noqa: E402  (workload shapes; imports no torch at module level)

PROBE_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad", "sgd")
PROBE_NAME = "c-avx512-probe"


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Alternating side-by-side benchmark of optim bench, its peers and the C probe.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: %(default)s)")
    p.add_argument("--workloads", default="tiny10k,resnet50,gpt2small",
                   help="comma-separated workloads (default: %(default)s; also: big64m)")
    p.add_argument("--threads", type=int, default=2, help="threads for every contender (default: %(default)s)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per run (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps for the peers (default: %(default)s)")
    p.add_argument("--optimizer", default="adam", help="optimizer (default: %(default)s)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64", "float16", "bfloat16"),
                   help="storage dtype of parameters, gradients and state (default: %(default)s; the C "
                        "probe runs float32 only and is left out for the others)")
    p.add_argument("--peers", default="torch-fused,deepspeed",
                   help="peers run by peer_bench.py (default: %(default)s; those without the "
                        "optimizer are dropped)")
    p.add_argument("--backends", default="dispatch,openmp", help="our backends (default: %(default)s)")
    p.add_argument("--implementation", default="foreach", help="our implementation (default: %(default)s)")
    p.add_argument("--optim-bin", default=os.path.join(REPO, ".build", "release", "optim"),
                   help="our bench binary (default: %(default)s)")
    p.add_argument("--optim-extra-args", default="",
                   help="extra arguments appended to our bench command line")
    p.add_argument("--venv", default=os.environ.get("OPTIM_PEER_VENV", os.path.join(REPO, ".venv-peers")),
                   help="peer venv (default: $OPTIM_PEER_VENV or <repo>/.venv-peers)")
    p.add_argument("--probe-bin", default=None,
                   help="C probe binary (default: built by Benchmarks/peers/build_probe.sh)")
    p.add_argument("--no-ours", action="store_true", help="skip our bench")
    p.add_argument("--no-peers", action="store_true", help="skip the peers")
    p.add_argument("--no-probe", action="store_true", help="skip the C probe")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per subprocess (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="raw rows, JSONL (default: Benchmarks/results/side_by_side-<date>.jsonl)")
    p.add_argument("--summarize", metavar="JSONL", default=None,
                   help="print the table of an earlier run's JSONL and exit")
    args = p.parse_args(argv)
    args.workload_list = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.peer_list = [x.strip() for x in args.peers.split(",") if x.strip()]
    if args.summarize is None:
        unknown = [w for w in args.workload_list if w not in peer_bench.WORKLOADS]
        if unknown:
            p.error(f"unknown workload(s) {', '.join(unknown)} (known: {', '.join(peer_bench.WORKLOADS)})")
        if args.optimizer not in peer_bench.BYTES_PER_F32_ELEMENT:
            p.error(f"unknown optimizer '{args.optimizer}' "
                    f"(known: {', '.join(peer_bench.BYTES_PER_F32_ELEMENT)})")
        if args.rounds < 1 or args.threads < 1 or args.steps < 1:
            p.error("--rounds, --threads and --steps must be >= 1")
    return args


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def json_objects(text):
    """The JSON objects among the lines of text; other lines are ignored."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def busy_cpu_seconds():
    """CPU seconds spent busy by the whole machine since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def children_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


LAST_OTHER_LOAD = {"value": None}


def run(cmd, timeout, env=None):
    """Run cmd; return (returncode, stdout, stderr, seconds). returncode None on timeout.

    Also notes in LAST_OTHER_LOAD the average number of cores that other processes kept
    busy meanwhile (machine busy time less the child's), a sign of a noisy run."""
    busy0, child0 = busy_cpu_seconds(), children_cpu_seconds()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        result = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        result = None, out, err
    secs = time.perf_counter() - t0
    busy1, child1 = busy_cpu_seconds(), children_cpu_seconds()
    LAST_OTHER_LOAD["value"] = (round(max(0.0, (busy1 - busy0) - (child1 - child0)) / secs, 2)
                                if busy0 is not None and busy1 is not None and secs > 0 else None)
    return result + (secs,)


def tail(text, lines=8):
    return "\n".join(text.strip().splitlines()[-lines:])


class Runner:
    def __init__(self, args, out_file):
        self.args = args
        self.out_file = out_file
        self.rows = []
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        self.have_ours = self.have_peers = self.have_probe = False
        self.probe_bin = None

    # -- bookkeeping -------------------------------------------------------------------
    def record(self, row):
        if row.get("kind") in ("result", "error"):
            # Cores kept busy by other processes during the run: above ~0.2, suspect noise.
            row["other_load"] = LAST_OTHER_LOAD["value"]
        self.rows.append(row)
        self.out_file.write(json.dumps(row) + "\n")
        self.out_file.flush()

    def record_error(self, base, cmd, rc, stdout, stderr):
        reason = "timed out" if rc is None else f"exit status {rc}"
        log(f"  ! {base['contender']} on {base['workload']} failed ({reason}):\n"
            + "    " + tail(stderr or stdout).replace("\n", "\n    "))
        self.record({**base, "kind": "error", "error": reason, "command": cmd,
                     "stderr_tail": tail(stderr or stdout, 20)})

    # -- availability ------------------------------------------------------------------
    def check(self):
        a = self.args
        if not a.no_ours:
            if os.path.isfile(a.optim_bin) and os.access(a.optim_bin, os.X_OK):
                self.have_ours = True
            else:
                log(f"note: our bench binary is missing ({a.optim_bin}); build it with "
                    f"`swift build -c release` or pass --optim-bin. Running the others only.")
        if not a.no_peers:
            py = os.path.join(a.venv, "bin", "python")
            supported = peer_bench.supported_peers(a.optimizer)
            dropped = [x for x in a.peer_list if x not in supported]
            if dropped:
                log(f"note: peer(s) {', '.join(dropped)} have no {a.optimizer}; skipped")
            a.peer_list = [x for x in a.peer_list if x in supported]
            if not os.access(py, os.X_OK):
                log(f"note: peer venv is missing ({a.venv}); create it with "
                    f"Benchmarks/peers/setup_venv.sh. Skipping the peers.")
            elif a.peer_list:
                self.have_peers = True
                self.peer_python = py
        if not a.no_probe:
            if a.optimizer not in PROBE_OPTIMIZERS:
                log(f"note: the C probe has no {a.optimizer} rule; skipped")
            elif a.dtype != "float32":
                log(f"note: the C probe runs float32 only; skipped for {a.dtype}")
            elif a.probe_bin:
                self.probe_bin, self.have_probe = a.probe_bin, os.access(a.probe_bin, os.X_OK)
                if not self.have_probe:
                    log(f"note: probe binary {a.probe_bin} is missing; skipping the probe")
            else:
                rc, out, err, _ = run(["bash", os.path.join(PEERS_DIR, "build_probe.sh")], 300)
                if rc == 0 and out.strip():
                    self.probe_bin, self.have_probe = out.strip().splitlines()[-1], True
                else:
                    log("note: building the C probe failed; skipping it:\n" + tail(err))

    def contenders(self):
        c = []
        if self.have_ours:
            c.append(("ours", None))
        if self.have_peers:
            c += [("peer", p) for p in self.args.peer_list]
        if self.have_probe:
            c.append(("probe", None))
        return c

    # -- one measurement ---------------------------------------------------------------
    def run_ours(self, base, workload):
        a = self.args
        cmd = [a.optim_bin, "bench", "--optimizer", a.optimizer, "--workload", workload,
               "--threads", str(a.threads), "--backend", a.backends,
               "--implementation", a.implementation, "--dtype", a.dtype,
               "--steps", str(a.steps), "--format", "json"] + shlex.split(a.optim_extra_args)
        base = dict(base, contender="ours")
        rc, out, err, secs = run(cmd, a.timeout, self.env)
        rows = [r for r in json_objects(out) if r.get("workload", workload) == workload]
        if rc != 0 or not rows:
            self.record_error(base, cmd, rc, out, err)
            return
        for r in rows:
            label = "swift-{}-{}".format(r.get("backend", "?"), r.get("implementation", a.implementation))
            self.record({**base, **r, "kind": "result", "source": "ours", "contender": label,
                         "wall_s": round(secs, 3)})
            log(f"  {label:24s} {r.get('ms_per_step_median')} ms/step")

    def run_peer(self, base, workload, peer):
        a = self.args
        cmd = [self.peer_python, os.path.join(PEERS_DIR, "peer_bench.py"),
               "--optimizer", a.optimizer, "--workload", workload, "--threads", str(a.threads),
               "--peer", peer, "--steps", str(a.steps), "--warmup", str(a.warmup),
               "--dtype", a.dtype, "--format", "json"]
        base = dict(base, contender=peer)
        rc, out, err, secs = run(cmd, a.timeout, self.env)
        rows = json_objects(out)
        if rc != 0 or not rows:
            self.record_error(base, cmd, rc, out, err)
            return
        for r in rows:
            self.record({**base, **r, "kind": "result", "source": "peer", "contender": peer,
                         "wall_s": round(secs, 3)})
            log(f"  {peer:24s} {r.get('ms_per_step_median')} ms/step")

    def run_probe(self, base, workload):
        a = self.args
        _, _, elements = peer_bench.WORKLOADS[workload]
        cmd = [self.probe_bin, "--optimizer", a.optimizer, "--elements", str(elements),
               "--threads", str(a.threads), "--reps", str(a.steps)]
        base = dict(base, contender=PROBE_NAME)
        rc, out, err, secs = run(cmd, a.timeout, self.env)
        rows = json_objects(out)
        if rc != 0 or not rows:
            self.record_error(base, cmd, rc, out, err)
            return
        r = rows[0]
        self.record({**base, **r, "kind": "result", "source": "probe", "contender": PROBE_NAME,
                     "optimizer": a.optimizer, "dtype": "float32", "params": elements,
                     "ms_per_step_median": r.get("ms_median"), "ms_per_step_min": r.get("ms_min"),
                     "wall_s": round(secs, 3)})
        log(f"  {PROBE_NAME:24s} {r.get('ms_median')} ms/step "
            f"({r.get('ns_per_element_median')} ns/element)")

    # -- the rounds --------------------------------------------------------------------
    def run_all(self):
        a = self.args
        contenders = self.contenders()
        if not contenders:
            log("error: nothing to run (no binary, no venv, no probe)")
            return
        for rnd in range(1, a.rounds + 1):
            order = contenders if rnd % 2 == 1 else list(reversed(contenders))
            for workload in a.workload_list:
                log(f"round {rnd}/{a.rounds}, {workload}: "
                    + ", ".join(p or k for k, p in order))
                for pos, (kind, peer) in enumerate(order):
                    base = {"round": rnd, "position": pos, "workload": workload,
                            "threads": a.threads}
                    if kind == "ours":
                        self.run_ours(base, workload)
                    elif kind == "peer":
                        self.run_peer(base, workload, peer)
                    else:
                        self.run_probe(base, workload)


# -- summary ---------------------------------------------------------------------------


def fmt_ms(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def fmt_ratio(x):
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"


def summarize(rows):
    """Markdown table: per workload and contender, stats over rounds of the per-run median."""
    results = [r for r in rows if r.get("kind") == "result"
               and isinstance(r.get("ms_per_step_median"), (int, float))]
    errors = [r for r in rows if r.get("kind") == "error"]
    meta = next((r for r in rows if r.get("kind") == "meta"), {})
    workloads = []
    for r in results:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    source_rank = {"ours": 0, "peer": 1, "probe": 2}

    lines = []
    if meta:
        lines.append(f"{meta.get('optimizer', '?')}, {meta.get('dtype', 'float32')}, {meta.get('threads', '?')} threads, "
                     f"{meta.get('steps', '?')} timed steps a run, {meta.get('rounds', '?')} "
                     f"alternating rounds, {meta.get('date', '')}")
        lines.append("")
    lines.append("| workload | contender | runs | ms/step (median of runs) | min | max | GB/s "
                 "| vs faster peer | vs probe | others' load |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        groups = {}
        for r in results:
            if r["workload"] == w:
                groups.setdefault((r["source"], r["contender"]), []).append(r)
        stats = {}
        for key, rs in groups.items():
            ms = [r["ms_per_step_median"] for r in rs]
            params = (peer_bench.WORKLOADS[w][2] if w in peer_bench.WORKLOADS
                      else rs[0].get("params"))
            bpe = rs[0].get("bytes_per_element") or peer_bench.BYTES_PER_F32_ELEMENT.get(
                rs[0].get("optimizer") or meta.get("optimizer"), 28)
            med = statistics.median(ms)
            loads = [r["other_load"] for r in rs if isinstance(r.get("other_load"), (int, float))]
            stats[key] = dict(n=len(ms), med=med, lo=min(ms), hi=max(ms),
                              load=max(loads) if loads else None,
                              gbs=(bpe * params / (med * 1e6)) if params and med > 0 else None)
        peers = {k: s for k, s in stats.items() if k[0] == "peer"}
        fastest_peer = min(peers.items(), key=lambda kv: kv[1]["med"]) if peers else None
        probe = next((s for k, s in stats.items() if k[0] == "probe"), None)
        for key in sorted(stats, key=lambda k: (source_rank.get(k[0], 9), stats[k]["med"])):
            s = stats[key]
            vs_peer = vs_probe = ""
            if key[0] == "ours" and fastest_peer:
                vs_peer = f"{fmt_ratio(fastest_peer[1]['med'] / s['med'])} ({fastest_peer[0][1]})"
            if key[0] in ("ours", "peer") and probe:
                vs_probe = fmt_ratio(probe["med"] / s["med"])
            gbs = f"{s['gbs']:.1f}" if s["gbs"] else ""
            load = f"{s['load']:.2f}" if s["load"] is not None else ""
            lines.append(f"| {w} | {key[1]} | {s['n']} | {fmt_ms(s['med'])} | {fmt_ms(s['lo'])} "
                         f"| {fmt_ms(s['hi'])} | {gbs} | {vs_peer} | {vs_probe} | {load} |")
    lines.append("")
    lines.append("ms/step: median over runs of each run's median step time; min, max: the "
                 "lowest and highest of those per-run medians. GB/s: minimum traffic at the "
                 "median. vs faster peer: the faster peer's ms / ours (above 1: ours is "
                 "faster). vs probe: probe ms / contender ms (1.00x: the C AVX-512 probe's "
                 "speed over the same element count in one flat array). others' load: the "
                 "most cores that other processes kept busy during one of the runs (the "
                 "machine may be shared; above ~0.2 suspect noise).")
    if errors:
        lines.append("")
        lines.append(f"{len(errors)} failed run(s): "
                     + "; ".join(f"round {e.get('round')} {e.get('workload')} {e.get('contender')} "
                                 f"({e.get('error')})" for e in errors))
    return "\n".join(lines)


def git_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv):
    args = parse_args(argv)
    if args.summarize:
        with open(args.summarize) as f:
            print(summarize(json_objects(f.read())))
        return 0

    now = datetime.datetime.now()
    out_path = args.out or os.path.join(HERE, "results",
                                        f"side_by_side-{now.strftime('%Y-%m-%d-%H%M%S')}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as out_file:
        runner = Runner(args, out_file)
        runner.check()
        runner.record({
            "kind": "meta", "date": now.isoformat(timespec="seconds"), "optimizer": args.optimizer,
            "dtype": args.dtype,
            "workloads": args.workload_list, "threads": args.threads, "steps": args.steps,
            "warmup": args.warmup, "rounds": args.rounds, "peers": args.peer_list,
            "backends": args.backends, "implementation": args.implementation,
            "ours": runner.have_ours, "probe": runner.have_probe, "commit": git_commit(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
        })
        runner.run_all()
    table = summarize(runner.rows)
    print(table)
    log(f"raw rows: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
