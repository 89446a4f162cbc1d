#!/usr/bin/env python3
"""Random reference cases for `optim verify-golden`, in the optim-golden/1 format of
../shared/golden/FORMAT.md, produced with PyTorch (CPU): random options, shapes, dtypes,
parameter groups, step counts, missing and sparse gradients, and LBFGS on Rosenbrock.

    python generate_random_cases.py SEED MODE OUT.json
    MODE: dense | fused | sparse | lbfgs | lbfgsbig | halfloop | lbfgs32

random_cases.json holds dense and fused (seed 11), sparse (11), lbfgsbig (3, 5), lbfgs (5, 6).
The first group's options are constructor arguments and the other groups override some of
them, as torch users write groups; options that torch reads only from its constructor
(Adagrad's initial_accumulator_value, Adafactor's d) are not overridden per group.
Not in the fixture: halfloop (float16/bfloat16 through torch's for-loop path, whose math
runs in the half type, where this library computes in float as torch's fused kernels do)
and lbfgs32 (LBFGS in float32: now and then torch's inexact float32 square root sends it
elsewhere, see Docs/golden.md). Needs torch; the tests do not.
"""
import json, random, sys

import torch

DT = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOL = {"float32": (2e-5, 1e-6), "float64": (1e-10, 1e-12), "bfloat16": (0.016, 1e-3), "float16": (2e-3, 1e-4)}
SHAPES = [[], [1], [5], [7], [3, 4], [2, 3, 2], [17], [1, 1], [6, 3], [33], [4, 1, 5]]

def rnd_lr(r): return r.choice([1e-3, 0.01, 0.05, 0.1, 0.003])
def opts(name, r):
    o = {}
    if name == "SGD":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.7: o["momentum"] = r.choice([0.5, 0.9, 0.99])
        if "momentum" in o and r.random() < 0.3: o["nesterov"] = True
        elif "momentum" in o and r.random() < 0.4: o["dampening"] = r.choice([0.1, 0.5])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.3: o["maximize"] = True
    elif name in ("Adam", "AdamW"):
        o["lr"] = rnd_lr(r)
        if r.random() < 0.5: o["betas"] = (r.choice([0.8, 0.9, 0.5]), r.choice([0.9, 0.99, 0.999]))
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.5: o["weight_decay"] = r.choice([0.01, 0.1, 0.5])
        if r.random() < 0.4: o["amsgrad"] = True
        if r.random() < 0.3: o["maximize"] = True
        if name == "Adam" and r.random() < 0.3: o["decoupled_weight_decay"] = True
    elif name == "RMSprop":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.4: o["alpha"] = r.choice([0.9, 0.5])
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.5: o["momentum"] = r.choice([0.5, 0.9])
        if r.random() < 0.5: o["centered"] = True
        if r.random() < 0.3: o["maximize"] = True
    elif name == "Adagrad":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.4: o["lr_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.4: o["initial_accumulator_value"] = r.choice([0.1, 1.0])
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.3: o["maximize"] = True
    elif name == "Adadelta":
        if r.random() < 0.6: o["lr"] = r.choice([0.5, 1.0, 0.1])
        if r.random() < 0.4: o["rho"] = r.choice([0.5, 0.95])
        if r.random() < 0.3: o["eps"] = r.choice([1e-3, 1e-8])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.3: o["maximize"] = True
    elif name == "Adamax":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.5: o["betas"] = (r.choice([0.8, 0.9]), r.choice([0.99, 0.999]))
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.3: o["maximize"] = True
    elif name == "ASGD":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.4: o["lambd"] = r.choice([1e-2, 1e-3])
        if r.random() < 0.4: o["alpha"] = r.choice([0.5, 0.9])
        o["t0"] = r.choice([1, 2, 3, 5, 100])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.3: o["maximize"] = True
    elif name == "NAdam":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.5: o["betas"] = (r.choice([0.8, 0.9]), r.choice([0.99, 0.999]))
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.4: o["momentum_decay"] = r.choice([0.01, 0.1])
        if "weight_decay" in o and r.random() < 0.5: o["decoupled_weight_decay"] = True
        if r.random() < 0.3: o["maximize"] = True
    elif name == "RAdam":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.5: o["betas"] = (r.choice([0.8, 0.9]), r.choice([0.9, 0.99, 0.999]))
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if "weight_decay" in o and r.random() < 0.5: o["decoupled_weight_decay"] = True
        if r.random() < 0.3: o["maximize"] = True
    elif name == "Rprop":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.5: o["etas"] = (r.choice([0.3, 0.5]), r.choice([1.1, 1.5]))
        if r.random() < 0.5: o["step_sizes"] = (r.choice([1e-6, 1e-3]), r.choice([0.05, 1.0, 50]))
        if r.random() < 0.3: o["maximize"] = True
    elif name == "Adafactor":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.4: o["beta2_decay"] = r.choice([-0.5, -0.9])
        if r.random() < 0.3: o["eps"] = (None, r.choice([1e-2, 1e-4]))
        if r.random() < 0.3: o["d"] = r.choice([0.5, 2.0])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.01, 0.1])
        if r.random() < 0.3: o["maximize"] = True
    elif name == "Muon":
        o["lr"] = r.choice([0.02, 0.01])
        if r.random() < 0.4: o["weight_decay"] = r.choice([0.0, 0.01])
        if r.random() < 0.4: o["momentum"] = r.choice([0.9, 0.5])
        if r.random() < 0.3: o["nesterov"] = False
        if r.random() < 0.3: o["ns_steps"] = r.choice([3, 6])
        if r.random() < 0.3: o["adjust_lr_fn"] = r.choice(["original", "match_rms_adamw"])
    elif name == "SparseAdam":
        o["lr"] = rnd_lr(r)
        if r.random() < 0.5: o["betas"] = (r.choice([0.8, 0.9]), r.choice([0.99, 0.999]))
        if r.random() < 0.3: o["eps"] = r.choice([1e-6, 1e-3])
        if r.random() < 0.3: o["maximize"] = True
    return o

def tolist(t): return t.detach().to(torch.float64).reshape(-1).tolist()

def clean(v):
    if isinstance(v, tuple): return [clean(x) for x in v]
    if isinstance(v, list): return [clean(x) for x in v]
    if isinstance(v, torch.Tensor): return v.item()
    return v

DROP = {"params", "foreach", "fused", "capturable", "differentiable", "param_names"}

def group_options(g): return {k: clean(v) for k, v in g.items() if k not in DROP}

def state_of(opt, p):
    st = opt.state.get(p, {})
    out = {}
    for k, v in st.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.item() if v.dim() == 0 and k in ("step", "eta", "mu", "mu_product") else tolist(v)
            if v.dim() == 0 and k not in ("step", "eta", "mu", "mu_product"): out[k] = [v.item()]
        elif isinstance(v, (int, float)): out[k] = v
        else: out[k] = None
    return out

def grad_case(name, r, idx, sparse=False, fused=False, dtype=None):
    dtype = dtype or r.choice(["float32", "float64"])
    tdt = DT[dtype]
    if name == "Muon": shapes = [r.choice([[3, 4], [4, 6], [5, 2], [1, 3], [8, 8]]) for _ in range(r.randint(1, 3))]
    elif sparse: shapes = [r.choice([[6, 3], [9, 2], [5], [4, 2, 2]]) for _ in range(r.randint(1, 2))]
    else: shapes = [r.choice(SHAPES) for _ in range(r.randint(1, 4))]
    params = [torch.randn(s, dtype=torch.float64).to(tdt).requires_grad_(False) for s in shapes]
    init = [tolist(p) for p in params]
    # groups
    n = len(params)
    ngroups = 1 if (name == "SparseAdam" and False) else r.randint(1, min(3, n))
    order = list(range(n)); r.shuffle(order)
    cuts = sorted(r.sample(range(1, n), ngroups - 1)) if ngroups > 1 else []
    parts = [order[a:b] for a, b in zip([0] + cuts, cuts + [n])]
    groups_spec = [(sorted(part), opts(name, r)) for part in parts]
    cls = getattr(torch.optim, name)
    extra = {}
    if fused: extra["fused"] = True
    elif name not in ("SparseAdam", "LBFGS", "Muon", "Adafactor"): extra["foreach"] = False
    CONSTRUCTOR_ONLY = {"initial_accumulator_value", "d"}
    for part, o in groups_spec[1:]:
        for k in CONSTRUCTOR_ONLY: o.pop(k, None)
    tgroups = [dict(params=[params[i] for i in part]) if gi == 0 else dict(params=[params[i] for i in part], **o)
               for gi, (part, o) in enumerate(groups_spec)]
    try:
        opt = cls(tgroups, **groups_spec[0][1], **extra)
    except Exception as e:
        return None
    nsteps = r.randint(1, 15)
    steps = []
    for s in range(nsteps):
        grads = []
        for p in params:
            if r.random() < 0.15:
                p.grad = None; grads.append(None); continue
            if sparse:
                rows = p.shape[0]
                k = r.randint(1, rows + 2)
                ind = [r.randrange(rows) for _ in range(k)]
                vals = torch.randn([k] + list(p.shape[1:]), dtype=torch.float64).to(tdt)
                p.grad = torch.sparse_coo_tensor(torch.tensor([ind]), vals, p.shape)
                grads.append({"sparse": True, "indices": ind, "values": tolist(vals)})
            else:
                g = (torch.randn(p.shape, dtype=torch.float64) * r.choice([1.0, 0.1, 3.0])).to(tdt)
                p.grad = g.clone()
                grads.append(tolist(g))
        try:
            opt.step()
        except Exception as e:
            return None
        steps.append({"grads": grads, "params": [tolist(p) for p in params]})
    rtol, atol = TOL[dtype]
    return {"id": f"{name}/rand{idx}/{dtype}" + ("-fused" if fused else ""), "optimizer": name, "dtype": dtype,
            "groups": [{"params": part, "options": group_options(g)} for (part, _), g in zip(groups_spec, opt.param_groups)],
            "params": [{"shape": list(s), "data": d} for s, d in zip(shapes, init)],
            "steps": steps, "state": [state_of(opt, p) for p in params],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": "fused" if fused else "forloop"}

def rosen(x):
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()

SIZES = [[[6]], [[4]], [[3], [3]], [[2]], [[5], [1]], [[2, 3]]]
def lbfgs_case(r, idx, dtype="float64"):
    tdt = DT[dtype]
    sizes = r.choice(SIZES)
    params = [(torch.randn(s, dtype=torch.float64) * 0.5 - 0.5).to(tdt).requires_grad_(True) for s in sizes]
    init = [tolist(p) for p in params]
    o = {}
    if r.random() < 0.5: o["lr"] = r.choice([0.5, 1.0, 0.1])
    if r.random() < 0.5: o["max_iter"] = r.choice([3, 5, 10, 20])
    if r.random() < 0.3: o["max_eval"] = r.choice([4, 8, 30])
    if r.random() < 0.3: o["history_size"] = r.choice([2, 3, 10])
    if r.random() < 0.3: o["tolerance_grad"] = r.choice([1e-5, 1e-9])
    if r.random() < 0.3: o["tolerance_change"] = r.choice([1e-6, 1e-12])
    if r.random() < 0.5: o["line_search_fn"] = "strong_wolfe"
    opt = torch.optim.LBFGS(params, **o)
    steps = []
    for s in range(r.randint(1, 5)):
        count = [0]
        def closure():
            count[0] += 1
            opt.zero_grad()
            x = torch.cat([p.reshape(-1) for p in params])
            loss = rosen(x)
            loss.backward()
            return loss
        loss = opt.step(closure)
        steps.append({"loss": float(loss.detach()), "evaluations": count[0], "params": [tolist(p) for p in params]})
    st = opt.state[params[0]]
    state = {k: (v if isinstance(v, (int, float)) and not isinstance(v, bool) else None) for k, v in st.items()}
    rtol, atol = {"float64": (1e-7, 1e-9), "float32": (1e-3, 1e-4)}[dtype]
    return {"id": f"LBFGS/rand{idx}/{dtype}", "optimizer": "LBFGS", "dtype": dtype,
            "groups": [{"params": list(range(len(params))), "options": group_options(opt.param_groups[0])}],
            "params": [{"shape": list(s), "data": d} for s, d in zip(sizes, init)],
            "steps": steps, "state": [state] + [{} for _ in params[1:]],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": "forloop", "objective": "rosenbrock"}

def main():
    seed = int(sys.argv[1]); what = sys.argv[2]; out = sys.argv[3]
    r = random.Random(seed); torch.manual_seed(seed)
    cases = []
    names = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "ASGD", "NAdam", "RAdam", "Rprop", "Adafactor", "Muon"]
    i = 0
    if what == "dense":
        for name in names:
            for k in range(6):
                c = grad_case(name, r, i); i += 1
                if c: cases.append(c)
    elif what == "fused":
        for name in ["SGD", "Adam", "AdamW", "Adagrad"]:
            for dt in ["float32", "float64", "bfloat16", "float16"]:
                c = grad_case(name, r, i, fused=True, dtype=dt); i += 1
                if c: cases.append(c)
    elif what == "halfloop":
        for name in names:
            for dt in ["bfloat16", "float16"]:
                c = grad_case(name, r, i, dtype=dt); i += 1
                if c: cases.append(c)
    elif what == "sparse":
        for name in ["SparseAdam", "Adagrad"]:
            for k in range(6):
                c = grad_case(name, r, i, sparse=True); i += 1
                if c: cases.append(c)
    elif what == "lbfgs":
        for k in range(8):
            cases.append(lbfgs_case(r, i)); i += 1
    elif what == "lbfgsbig":
        global SIZES
        SIZES = [[[10]], [[16]], [[20]], [[33]], [[5, 5]], [[64]], [[9], [8]]]
        for k in range(10):
            cases.append(lbfgs_case(r, i)); i += 1
    elif what == "lbfgs32":
        for k in range(6):
            cases.append(lbfgs_case(r, i, "float32")); i += 1
    json.dump({"format": "optim-golden/1", "generator": f"torch {torch.__version__}", "cases": cases}, open(out, "w"))
    print(len(cases), "cases")

main()
