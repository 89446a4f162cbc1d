#!/usr/bin/env python3
"""Time the peers of swift-optim (PyTorch's optimizers, DeepSpeed's CPU Adam) on the
project's benchmark workloads, the same way `optim bench` times ours.

For each (workload, peer): build the workload's parameter tensors, give every
parameter a gradient drawn once from a fixed-seed generator (never changed between
steps), construct the optimizer with its default hyper-parameters, run --warmup
untimed steps (they allocate the state; DeepSpeed's kernel is JIT-built before
them), then time --steps individual `optimizer.step()` calls with
time.perf_counter. One JSON object per (workload, peer) goes to stdout, one a line
(--format json), or a table at the end (--format table). Anything a library prints
goes to stderr, so stdout holds only results.

Run it with the peer venv's python (Benchmarks/peers/setup_venv.sh makes it):

    .venv-peers/bin/python Benchmarks/peers/peer_bench.py --optimizer adam \\
        --workload tiny10k,resnet50 --threads 2 --peer torch-fused,deepspeed \\
        --steps 20 --warmup 3 --format table

gb_per_s is the minimum memory traffic of one step (for float32: 28 bytes per
element for Adam/AdamW, 20 for SGD with momentum, Adagrad and RMSprop, 12 for plain
SGD; scaled by the element size for other dtypes) divided by the median step time.
"""

import argparse
import os
import sys

# --------------------------------------------------------------------------------------
# Workloads. Shapes are listed in the order the parameters appear in the model.


def _tiny10k():
    return [(100,)] * 10_000


def _big64m():
    return [(67_108_864,)]


def _resnet50():
    """torchvision ResNet-50: conv weights, batch-norm weight and bias, then the fc layer."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    in_ch = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        out_ch = width * 4
        for b in range(blocks):
            shapes += [(width, in_ch, 1, 1), (width,), (width,)]
            shapes += [(width, width, 3, 3), (width,), (width,)]
            shapes += [(out_ch, width, 1, 1), (out_ch,), (out_ch,)]
            if b == 0:  # projection shortcut
                shapes += [(out_ch, in_ch, 1, 1), (out_ch,), (out_ch,)]
            in_ch = out_ch
    shapes += [(1000, 2048), (1000,)]
    return shapes


def _gpt2small():
    """GPT-2 small (12 layers, d=768, vocabulary 50257, context 1024); the output
    projection is tied to the token embedding and so not a separate parameter."""
    d, vocab, ctx, layers = 768, 50257, 1024, 12
    shapes = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(d,), (d,)]                  # ln_1
        shapes += [(d, 3 * d), (3 * d,)]        # attn.c_attn
        shapes += [(d, d), (d,)]                # attn.c_proj
        shapes += [(d,), (d,)]                  # ln_2
        shapes += [(d, 4 * d), (4 * d,)]        # mlp.c_fc
        shapes += [(4 * d, d), (d,)]            # mlp.c_proj
    shapes += [(d,), (d,)]                      # ln_f
    return shapes


# name -> (builder, expected tensor count, expected parameter count)
WORKLOADS = {
    "tiny10k": (_tiny10k, 10_000, 1_000_000),
    "resnet50": (_resnet50, 161, 25_557_032),
    "gpt2small": (_gpt2small, 148, 124_439_808),
    "big64m": (_big64m, 1, 67_108_864),
}


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def workload_shapes(name):
    build, tensors, params = WORKLOADS[name]
    shapes = build()
    got = (len(shapes), sum(numel(s) for s in shapes))
    if got != (tensors, params):
        raise AssertionError(f"workload {name}: built {got}, expected {(tensors, params)}")
    return shapes


# --------------------------------------------------------------------------------------
# Optimizers and peers.

# Minimum bytes moved per float32 element by one step.
BYTES_PER_F32_ELEMENT = {
    "adam": 28, "adamw": 28, "sgd": 20, "sgd-plain": 12, "adagrad": 20, "rmsprop": 20,
}

TORCH_PEERS = ("torch-fused", "torch-foreach", "torch-forloop")
ALL_PEERS = TORCH_PEERS + ("deepspeed",)

# Hyper-parameters: torch's defaults, except SGD, which needs a learning rate and
# (for "sgd") momentum 0.9.
HPARAMS = {
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
    "sgd": dict(lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
    "sgd-plain": dict(lr=1e-3, momentum=0.0, weight_decay=0.0),
    "adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                    eps=1e-10),
    "rmsprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                    centered=False),
}

TORCH_CLASS = {
    "adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "sgd-plain": "SGD",
    "adagrad": "Adagrad", "rmsprop": "RMSprop",
}

DTYPES = ("float32", "float16", "bfloat16")


def supported_peers(optimizer, torch_module=None):
    """Peers that implement `optimizer`. torch-fused is offered only where torch has
    a fused kernel (a `fused` argument); DeepSpeed's CPU optimizer is Adam/AdamW only."""
    peers = ["torch-foreach", "torch-forloop"]
    if torch_module is None or _torch_has_fused(torch_module, optimizer):
        if optimizer != "rmsprop":
            peers.insert(0, "torch-fused")
    if optimizer in ("adam", "adamw"):
        peers.append("deepspeed")
    return peers


def _torch_has_fused(torch, optimizer):
    import inspect
    cls = getattr(torch.optim, TORCH_CLASS[optimizer])
    return "fused" in inspect.signature(cls.__init__).parameters


def validate_combos(args):
    errors = []
    for peer in args.peers:
        if peer not in ALL_PEERS:
            errors.append(f"unknown peer '{peer}' (known: {', '.join(ALL_PEERS)})")
        elif peer not in supported_peers(args.optimizer):
            errors.append(f"peer '{peer}' has no {args.optimizer} "
                          f"(peers for {args.optimizer}: "
                          f"{', '.join(supported_peers(args.optimizer))})")
        elif peer == "deepspeed" and args.dtype != "float32":
            errors.append("peer 'deepspeed' is benchmarked in float32 only")
    for w in args.workloads:
        if w not in WORKLOADS:
            errors.append(f"unknown workload '{w}' (known: {', '.join(WORKLOADS)})")
    return errors


# --------------------------------------------------------------------------------------
# Command line, parsed before torch is imported so the thread count reaches OpenMP.


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Benchmark the peers (PyTorch, DeepSpeed) of swift-optim's optimizers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="optimizers: " + ", ".join(BYTES_PER_F32_ELEMENT)
        + "\npeers: " + ", ".join(ALL_PEERS)
        + "\nworkloads: " + ", ".join(WORKLOADS))
    p.add_argument("--optimizer", default="adam", choices=sorted(BYTES_PER_F32_ELEMENT))
    p.add_argument("--workload", default="tiny10k,resnet50,gpt2small",
                   help="comma-separated workloads (default: %(default)s)")
    p.add_argument("--peer", default=None,
                   help="comma-separated peers (default: every peer that has the optimizer)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
                   or os.cpu_count(), help="threads for torch and OpenMP (default: all cores)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: %(default)s)")
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    p.add_argument("--seed", type=int, default=0, help="generator seed for parameters and gradients")
    p.add_argument("--format", default="json", choices=("json", "table"))
    p.add_argument("--list", action="store_true", help="list optimizers, peers, workloads and exit")
    args = p.parse_args(argv)
    args.workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    args.peers = ([x.strip() for x in args.peer.split(",") if x.strip()]
                  if args.peer else supported_peers(args.optimizer))
    if args.threads < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--threads and --steps must be >= 1, --warmup >= 0")
    return args


def print_list():
    for opt in BYTES_PER_F32_ELEMENT:
        print(f"optimizer {opt}: peers {', '.join(supported_peers(opt))}; "
              f"{BYTES_PER_F32_ELEMENT[opt]} bytes per float32 element")
    for name, (_, tensors, params) in WORKLOADS.items():
        print(f"workload {name}: {tensors} tensors, {params} parameters")


def configure_environment(threads):
    """Thread counts and DeepSpeed settings; must run before torch is imported."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # ninja (used by DeepSpeed's JIT build) lives beside this interpreter in the venv.
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path
    # Keep JIT-built kernels in the repository's git-ignored build folder.
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                          os.path.join(repo, ".build-peers", "torch_extensions"))


# --------------------------------------------------------------------------------------
# Benchmark.


class Peer:
    """Builds one optimizer over a parameter list."""

    def __init__(self, torch, name, optimizer):
        self.torch, self.name, self.optimizer = torch, name, optimizer
        self.hparams = dict(HPARAMS[optimizer])

    def prepare(self):
        """One-time, untimed setup (DeepSpeed's JIT build). Returns seconds spent."""
        if self.name != "deepspeed":
            return 0.0
        import time
        t0 = time.perf_counter()
        p = self.torch.zeros(16, requires_grad=True)
        p.grad = self.torch.ones(16)
        opt = self._make([p])
        opt.step()
        del opt, p
        return time.perf_counter() - t0

    def make(self, params):
        return self._make(params)

    def _make(self, params):
        torch, h = self.torch, dict(self.hparams)
        if self.name == "deepspeed":
            from deepspeed.ops.adam import DeepSpeedCPUAdam
            return DeepSpeedCPUAdam(params, lr=h["lr"], betas=h["betas"], eps=h["eps"],
                                    weight_decay=h["weight_decay"], bias_correction=True,
                                    adamw_mode=(self.optimizer == "adamw"))
        cls = getattr(torch.optim, TORCH_CLASS[self.optimizer])
        kw = {}
        if self.name == "torch-fused":
            kw = dict(fused=True, foreach=False)
        elif self.name == "torch-foreach":
            kw = dict(foreach=True)
            if "fused" in _signature_params(cls):
                kw["fused"] = False
        elif self.name == "torch-forloop":
            kw = dict(foreach=False)
            if "fused" in _signature_params(cls):
                kw["fused"] = False
        return cls(params, **h, **kw)


def _signature_params(cls):
    import inspect
    return inspect.signature(cls.__init__).parameters


def make_parameters(torch, shapes, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)
        p.requires_grad_(True)
        p.grad = (torch.randn(shape, generator=gen, dtype=torch.float32) * 1e-2).to(dtype)
        params.append(p)
    return params


def run_one(torch, args, workload, peer_name, setup_s):
    import statistics
    import time

    dtype = getattr(torch, args.dtype)
    shapes = workload_shapes(workload)
    params = make_parameters(torch, shapes, dtype, args.seed)
    peer = Peer(torch, peer_name, args.optimizer)
    opt = peer.make(params)
    for _ in range(args.warmup):
        opt.step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        checksum = float(sum(p.detach().double().sum() for p in params))

    n = sum(numel(s) for s in shapes)
    itemsize = torch.empty((), dtype=dtype).element_size()
    bytes_per_element = BYTES_PER_F32_ELEMENT[args.optimizer] * itemsize / 4
    median = statistics.median(times)
    row = {
        "optimizer": args.optimizer,
        "workload": workload,
        "dtype": args.dtype,
        "threads": args.threads,
        "peer": peer_name,
        "tensors": len(shapes),
        "params": n,
        "steps": args.steps,
        "warmup": args.warmup,
        "ms_per_step_median": round(median * 1e3, 4),
        "ms_per_step_min": round(min(times) * 1e3, 4),
        "ms_per_step_max": round(max(times) * 1e3, 4),
        "gb_per_s": round(bytes_per_element * n / median / 1e9, 3),
        "bytes_per_element": bytes_per_element,
        "checksum": checksum,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "hparams": {k: (list(v) if isinstance(v, tuple) else v) for k, v in peer.hparams.items()},
    }
    if peer_name == "deepspeed":
        import deepspeed
        row["deepspeed"] = deepspeed.__version__
        row["setup_s"] = round(setup_s, 3)
    del opt, params
    return row


def print_table(rows, out):
    cols = ["workload", "peer", "tensors", "params", "ms_per_step_median", "ms_per_step_min",
            "gb_per_s"]
    out.write("| " + " | ".join(cols) + " |\n")
    out.write("|" + "|".join("---" for _ in cols) + "|\n")
    for r in rows:
        out.write("| " + " | ".join(str(r[c]) for c in cols) + " |\n")
    if rows:
        r = rows[0]
        out.write(f"\n{r['optimizer']}, {r['dtype']}, {r['threads']} threads, "
                  f"{r['steps']} timed steps after {r['warmup']} warm-up, torch {r['torch']}\n")


def main(argv):
    args = parse_args(argv)
    if args.list:
        print_list()
        return 0
    errors = validate_combos(args)
    if errors:
        for e in errors:
            print(f"peer_bench: error: {e}", file=sys.stderr)
        return 2

    configure_environment(args.threads)

    # Results go to the original stdout; everything else written to fd 1 from here on
    # (library banners, the JIT build's compiler output) goes to stderr.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    import gc
    import json
    import torch
    torch.set_num_threads(args.threads)

    if "torch-fused" in args.peers and not _torch_has_fused(torch, args.optimizer):
        print(f"peer_bench: error: torch {torch.__version__} has no fused "
              f"{TORCH_CLASS[args.optimizer]}", file=sys.stderr)
        return 2

    setup = {}
    rows = []
    for workload in args.workloads:
        for peer_name in args.peers:
            if peer_name not in setup:
                try:
                    setup[peer_name] = Peer(torch, peer_name, args.optimizer).prepare()
                except Exception as e:  # e.g. DeepSpeed's JIT build failed
                    print(f"peer_bench: error: cannot set up {peer_name}: "
                          f"{type(e).__name__}: {e}", file=sys.stderr)
                    return 1
                if setup[peer_name] > 0:
                    print(f"peer_bench: {peer_name} setup (JIT build/load) took "
                          f"{setup[peer_name]:.1f} s, untimed", file=sys.stderr)
            print(f"peer_bench: {args.optimizer} {workload} {peer_name} "
                  f"threads={args.threads} ...", file=sys.stderr)
            row = run_one(torch, args, workload, peer_name, setup[peer_name])
            gc.collect()
            rows.append(row)
            if args.format == "json":
                out.write(json.dumps(row) + "\n")
    if args.format == "table":
        print_table(rows, out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
