#!/usr/bin/env python3
"""Reference trajectories for optimizers beyond torch.optim, in the optim-golden/1 format of
../shared/golden/FORMAT.md, produced on CPU by their published implementations:

    Lion               lion_pytorch.Lion                  (lion-pytorch 0.2.5)
    Adan, Lamb         pytorch_optimizer.Adan / .Lamb     (pytorch-optimizer 4.1.0)
    ScheduleFreeAdamW  schedulefree.AdamWScheduleFree     (schedulefree 1.4.1), in train mode
    AveragedModel      torch.optim.swa_utils.AveragedModel (torch 2.15.0): EMA and SWA averages
    SWALR              torch.optim.swa_utils.SWALR         (torch 2.15.0)

Rerun from the repository root, with the peer venv (.venv-peers, gitignored) holding
torch==2.15.0 lion-pytorch==0.2.5 pytorch-optimizer==4.1.0 schedulefree==1.4.1:

    .venv-peers/bin/python Tests/OptimTests/Fixtures/generate_beyond_torch.py

It writes beyond_torch.json (optimizer cases, and the constructor options the references
refuse, as in errors.json) and beyond_torch_schedulers.json (SWALR, as in schedulers.json)
beside itself. Every case draws its parameters and gradients from its own generator, seeded
from the case id (Lion: the id and the first salt for which no sign of
beta1 * exp_avg + (1 - beta1) * grad is within rounding of zero), so the output does not
depend on the order of the cases.

Conventions beyond optimizers.json:
- `reference: "forloop"`: the references' single-tensor paths (`foreach=False` for
  pytorch_optimizer and schedulefree, whose CPU default is their foreach path; Adan and
  ScheduleFreeAdamW give the same bits either way, which this script asserts; Lamb does not).
- Options that a reference reads from its constructor rather than from a group (Lion's
  `decoupled_weight_decay`, Adan's and Lamb's `maximize`, Lamb's `pre_norm`,
  `degenerated_to_sgd` and `n_sma_threshold`) are written into every group; the first group's
  options are always the constructor's (Lion divides by the constructor's lr).
- `group_state`: per group, the scalars the reference keeps in the group and changes while
  stepping (Adan and Lamb: `step`; ScheduleFreeAdamW: `k`, `weight_sum`, `lr_max`,
  `scheduled_lr`, `train_mode`), after the last step.
- AveragedModel cases: `options` {"strategy": "ema", "decay": d} or {"strategy": "swa"} (also
  given as the one group's options); each step is {"set_params": [[...], ...],
  "averaged": [[...], ...], "n_averaged": n}: the model's parameters are set to `set_params`,
  then `update_parameters(model)` is called, and `averaged` are the averaged parameters after
  it, `n_averaged` its counter after it.
Needs torch and the three packages; the tests do not.
"""
import json
import math
import os
import zlib
from importlib.metadata import version

import torch
from torch.optim.swa_utils import AveragedModel, SWALR, get_ema_multi_avg_fn

import lion_pytorch
import pytorch_optimizer
import schedulefree

HERE = os.path.dirname(os.path.abspath(__file__))
VERSIONS = {
    "torch": torch.__version__,
    "lion-pytorch": version("lion-pytorch"),
    "pytorch-optimizer": version("pytorch-optimizer"),
    "schedulefree": version("schedulefree"),
}
GENERATOR = "; ".join(f"{k} {v}" for k, v in VERSIONS.items()) + " (generate_beyond_torch.py)"

DT = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
# The half types: the references round the result of every tensor op to the half type (add
# and sub with alpha on short tensors also round alpha and alpha * other), so a library that
# keeps float math between its loads and stores differs by a few units in the last place;
# these bounds hold that difference (Lamb in bfloat16 needs more, see lamb_cases).
TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6), "bfloat16": (0.03, 4e-3), "float16": (4e-3, 4e-4)}


def tolist(t):
    return t.detach().to(torch.float64).reshape(-1).tolist()


def clean(v):
    if isinstance(v, (tuple, list)):
        return [clean(x) for x in v]
    if isinstance(v, torch.Tensor):
        return v.item()
    return v


IMPLEMENTATION_KEYS = {"params", "foreach", "fused", "capturable", "differentiable", "param_names"}


def state_of(opt, p):
    out = {}
    for k, v in opt.state.get(p, {}).items():
        if isinstance(v, torch.Tensor):
            out[k] = tolist(v)  # a 0-dim tensor is a one-element list, as in optimizers.json
        elif isinstance(v, bool):
            out[k] = v
        elif isinstance(v, (int, float)):
            out[k] = v
        else:
            out[k] = None
    return out


def case_generator(cid):
    return torch.Generator().manual_seed(zlib.crc32(cid.encode()))


def opt_id(name, ctor, dtype, suffix=""):
    text = ",".join(f"{k}={v}" for k, v in ctor.items()) or "default"
    return f"{name}/{text}{suffix}/{dtype}"


def grad_case(name, make, ctor, dtype, *, overrides=None, shapes=([5, 3], [7], []), steps=6,
              null=(1, 2), param_scale=1.0, grad_scale=1.0, extra_options=None,
              group_state_keys=(), prepare=None, suffix="", check_same=None, guard=None, salt="", tol=None):
    """One gradient-driven case. `make(tgroups, ctor, foreach)` builds the optimizer; `overrides`
    are the second group's options (None: one group). The second group holds parameter 1."""
    cid = opt_id(name, ctor, dtype, suffix)
    tdt = DT[dtype]
    g = case_generator(cid + salt)
    init = [(torch.randn(s, dtype=torch.float64, generator=g) * param_scale).to(tdt) for s in shapes]
    n = len(shapes)
    parts = [list(range(n))] if overrides is None else [[i for i in range(n) if i != 1], [1]]
    grads = []
    for s in range(steps):
        row = []
        for i, shape in enumerate(shapes):
            gi = (torch.randn(shape, dtype=torch.float64, generator=g) * grad_scale).to(tdt)
            row.append(None if (i, s) == tuple(null) else gi)
        grads.append(row)

    def run(foreach):
        params = [t.clone() for t in init]
        tgroups = [dict(params=[params[i] for i in part]) if gi == 0 else
                   dict(params=[params[i] for i in part], **overrides) for gi, part in enumerate(parts)]
        opt = make(tgroups, ctor, foreach)
        if prepare:
            prepare(opt)
        options = [{k: clean(v) for k, v in grp.items() if k not in IMPLEMENTATION_KEYS and k not in group_state_keys}
                   for grp in opt.param_groups]
        for o in options:
            o.update(extra_options or {})
        trajectory = []
        for row in grads:
            for p, gr in zip(params, row):
                p.grad = None if gr is None else gr.clone()
            if guard:
                guard(opt, params)
            opt.step()
            trajectory.append({"grads": [None if gr is None else tolist(gr) for gr in row],
                               "params": [tolist(p) for p in params]})
        group_state = [{k: clean(grp[k]) for k in group_state_keys if k in grp} for grp in opt.param_groups]
        return opt, params, options, trajectory, group_state

    opt, params, options, trajectory, group_state = run(False)
    if check_same is not None:
        _, _, _, other, other_gs = run(check_same)
        assert other == trajectory and other_gs == group_state, f"{cid}: foreach={check_same} differs from forloop"
    rtol, atol = tol or TOL[dtype]
    case = {"id": cid, "optimizer": name, "dtype": dtype,
            "groups": [{"params": part, "options": o} for part, o in zip(parts, options)],
            "params": [{"shape": list(s), "data": tolist(t)} for s, t in zip(shapes, init)],
            "steps": trajectory, "state": [state_of(opt, p) for p in params],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": "forloop"}
    if group_state_keys:
        case["group_state"] = group_state
    return case


# ---------------------------------------------------------------------------------------------
# Lion

LION_MARGIN = {}  # dtype: smallest |beta1 m + (1 - beta1) g| / (|beta1 m| + |(1 - beta1) g|) met


def lion_guard(opt, params):
    """The sign of beta1 * exp_avg + (1 - beta1) * grad must not hang on rounding."""
    for grp in opt.param_groups:
        b1 = grp["betas"][0]
        for p in grp["params"]:
            if p.grad is None:
                continue
            m = opt.state[p]["exp_avg"].double() if opt.state[p] else torch.zeros_like(p, dtype=torch.float64)
            a, b = b1 * m, (1 - b1) * p.grad.double()
            margin = ((a + b).abs() / (a.abs() + b.abs())).min().item()
            LION_MARGIN[p.dtype] = min(LION_MARGIN.get(p.dtype, math.inf), margin)


def make_lion(tgroups, ctor, foreach):
    return lion_pytorch.Lion(tgroups, **ctor)


# Smallest margin per dtype: above it, rounding (the reference's per-op rounding in the half
# types, or another order of the same math) cannot flip a sign.
LION_NEEDED = {torch.float64: 1e-3, torch.float32: 1e-3, torch.float16: 2e-3, torch.bfloat16: 8e-3}


def lion_case(ctor, dt, **kw):
    """Draws again (with a salt on the seed) until no sign hangs on rounding."""
    for salt in [""] + [f"#{i}" for i in range(1, 100)]:
        LION_MARGIN.clear()
        case = grad_case("Lion", make_lion, ctor, dt, guard=lion_guard, salt=salt, **kw)
        if min(LION_MARGIN.values()) > LION_NEEDED[DT[dt]]:
            return case
    raise AssertionError(f"no Lion draw for {ctor} {dt}")


def lion_cases():
    out = []
    for dt in ["float32", "float64", "bfloat16", "float16"]:
        out.append(lion_case({}, dt, extra_options={"decoupled_weight_decay": False}))
    for dt in ["float32", "float64"]:
        out.append(lion_case({"lr": 0.01}, dt, shapes=([5, 3], [7], [1]), null=(0, 3),
                             extra_options={"decoupled_weight_decay": False}))
    for dt in ["float32", "float64", "bfloat16"]:
        out.append(lion_case({"lr": 0.01, "betas": (0.95, 0.98), "weight_decay": 0.1}, dt,
                             overrides={"betas": (0.8, 0.9), "weight_decay": 0.5, "lr": 0.003}, steps=8,
                             extra_options={"decoupled_weight_decay": False}))
    for dt in ["float32", "float64"]:
        out.append(lion_case({"lr": 0.01, "weight_decay": 0.001, "decoupled_weight_decay": True}, dt,
                             overrides={"lr": 0.003, "weight_decay": 0.002}, steps=7, null=(2, 0),
                             extra_options={"decoupled_weight_decay": True}))
    return out


# ---------------------------------------------------------------------------------------------
# Adan

def make_adan(tgroups, ctor, foreach):
    return pytorch_optimizer.Adan(tgroups, **ctor, foreach=foreach)


def adan_cases():
    out = []
    ex = lambda ctor: {"maximize": ctor.get("maximize", False)}
    specs = [
        ({}, {}, ["float32", "float64", "bfloat16", "float16"]),
        ({"lr": 0.01}, dict(null=(1, 0)), ["float32", "float64"]),
        ({"lr": 0.01, "weight_decay": 0.05}, dict(overrides={"weight_decay": 0.2, "betas": (0.9, 0.9, 0.999)}, steps=8),
         ["float32", "float64", "bfloat16"]),
        ({"lr": 0.01, "weight_decay": 0.05, "weight_decouple": True},
         dict(overrides={"lr": 0.02, "weight_decay": 0.0}, null=(0, 4)), ["float32", "float64"]),
        ({"lr": 0.01, "betas": (0.9, 0.95, 0.999), "eps": 1e-6, "maximize": True}, dict(steps=5), ["float32", "float64"]),
        ({"lr": 0.01, "max_grad_norm": 1.0}, dict(shapes=([5, 3], [7], [1]), grad_scale=2.0), ["float32", "float64"]),
    ]
    for ctor, kw, dts in specs:
        for dt in dts:
            out.append(grad_case("Adan", make_adan, ctor, dt, extra_options=ex(ctor), group_state_keys=("step",),
                                 check_same=True if dt in ("float32", "float64") else None, **kw))
    return out


# ---------------------------------------------------------------------------------------------
# Lamb

LAMB_CTOR_ONLY = ("maximize", "pre_norm", "degenerated_to_sgd", "n_sma_threshold")
LAMB_CTOR_DEFAULTS = {"maximize": False, "pre_norm": False, "degenerated_to_sgd": False, "n_sma_threshold": 5}


def make_lamb(tgroups, ctor, foreach):
    return pytorch_optimizer.Lamb(tgroups, **ctor, foreach=foreach)


def lamb_cases():
    out = []
    ex = lambda ctor: {k: ctor.get(k, LAMB_CTOR_DEFAULTS[k]) for k in LAMB_CTOR_ONLY}
    specs = [
        ({}, {}, ["float32", "float64", "bfloat16", "float16"]),
        ({"lr": 0.01, "weight_decay": 0.1}, dict(overrides={"weight_decouple": False, "weight_decay": 0.3}, steps=8, null=(1, 0)),
         ["float32", "float64", "bfloat16"]),
        ({"lr": 0.01, "weight_decay": 0.1, "fixed_decay": True, "adam": True}, dict(overrides={"adam": False}),
         ["float32", "float64"]),
        ({"lr": 0.01, "betas": (0.8, 0.99), "grad_averaging": False, "eps": 1e-8, "maximize": True},
         dict(shapes=([5, 3], [7], [1]), steps=5), ["float32", "float64"]),
        # parameters large enough that ||p|| passes the clamp at 10
        ({"lr": 0.05}, dict(param_scale=4.0, suffix=",params*4"), ["float32", "float64"]),
    ]
    for ctor, kw, dts in specs:
        for dt in dts:
            # bfloat16: the trust ratio ||p|| / ||update|| of a one-element parameter amplifies
            # the rounding of every op (4% between torch and float math in one case)
            out.append(grad_case("Lamb", make_lamb, ctor, dt, extra_options=ex(ctor), group_state_keys=("step",),
                                 tol=(0.08, 4e-3) if dt == "bfloat16" else None, **kw))
    return out


# ---------------------------------------------------------------------------------------------
# Schedule-free AdamW

SF_GROUP_STATE = ("k", "weight_sum", "lr_max", "scheduled_lr", "train_mode")


def make_sf(tgroups, ctor, foreach):
    return schedulefree.AdamWScheduleFree(tgroups, **ctor, foreach=foreach)


def sf_cases():
    out = []
    specs = [
        ({}, {}, ["float32", "float64", "bfloat16", "float16"]),
        ({"lr": 0.01}, dict(null=(1, 0), steps=7), ["float32", "float64"]),
        ({"lr": 0.01, "warmup_steps": 3}, dict(overrides={"warmup_steps": 5, "lr": 0.02}, steps=8),
         ["float32", "float64", "bfloat16"]),
        ({"lr": 0.01, "weight_decay": 0.1}, dict(overrides={"weight_decay": 0.0, "betas": (0.95, 0.99)}, null=(2, 3)),
         ["float32", "float64"]),
        ({"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "warmup_steps": 2, "r": 1.0, "weight_lr_power": 1.0},
         dict(shapes=([5, 3], [7], [1])), ["float32", "float64"]),
    ]
    for ctor, kw, dts in specs:
        for dt in dts:
            out.append(grad_case("ScheduleFreeAdamW", make_sf, ctor, dt, group_state_keys=SF_GROUP_STATE,
                                 prepare=lambda o: o.train(),
                                 check_same=True if dt in ("float32", "float64") else None, **kw))
    return out


# ---------------------------------------------------------------------------------------------
# Weight averaging

class Holder(torch.nn.Module):
    def __init__(self, tensors):
        super().__init__()
        self.ps = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in tensors])


def averaged_case(strategy, decay, dtype, steps=6, shapes=([5, 3], [7], [])):
    options = {"strategy": strategy} if strategy == "swa" else {"strategy": strategy, "decay": decay}
    text = ",".join(f"{k}={v}" for k, v in options.items())
    cid = f"AveragedModel/{text}/{dtype}"
    tdt = DT[dtype]
    g = case_generator(cid)
    init = [torch.randn(s, dtype=torch.float64, generator=g).to(tdt) for s in shapes]
    model = Holder(init)
    avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay) if strategy == "ema" else None,
                        use_buffers=False)
    out_steps = []
    for s in range(steps):
        new = [torch.randn(sh, dtype=torch.float64, generator=g).to(tdt) for sh in shapes]
        with torch.no_grad():
            for p, t in zip(model.parameters(), new):
                p.copy_(t)
        avg.update_parameters(model)
        out_steps.append({"set_params": [tolist(t) for t in new],
                          "averaged": [tolist(p) for p in avg.module.parameters()],
                          "n_averaged": int(avg.n_averaged.item())})
    rtol, atol = TOL[dtype]
    return {"id": cid, "optimizer": "AveragedModel", "dtype": dtype, "options": options,
            "groups": [{"params": list(range(len(shapes))), "options": options}],
            "params": [{"shape": list(s), "data": tolist(t)} for s, t in zip(shapes, init)],
            "steps": out_steps, "tolerance": {"rtol": rtol, "atol": atol}, "reference": "forloop"}


def averaged_cases():
    out = []
    for dt in ["float32", "float64", "bfloat16", "float16"]:
        out.append(averaged_case("ema", 0.9, dt))
        out.append(averaged_case("swa", None, dt, steps=8))
    for dt in ["float32", "float64"]:
        out.append(averaged_case("ema", 0.3, dt))  # lerp weight 0.7: torch's other lerp formula
        out.append(averaged_case("ema", 0.999, dt, shapes=([5, 3], [7], [1])))
    return out


# ---------------------------------------------------------------------------------------------
# Refused options

def errors():
    """What the references refuse, and the edges they accept. Left out: what they accept but a
    library may sensibly refuse (schedulefree validates nothing: a negative lr, eps, weight
    decay or warmup, betas of 1; Lion accepts a negative weight_decay)."""
    p = lambda: [torch.zeros(3, requires_grad=True)]
    probes = [
        ("Lion", lambda o: lion_pytorch.Lion(p(), **o), [
            {"lr": 0.0}, {"lr": -0.1}, {"betas": (1.5, 0.99)}, {"betas": (0.9, -0.1)}, {"betas": (1.0, 1.0)}]),
        ("Adan", lambda o: pytorch_optimizer.Adan(p(), **o), [
            {"lr": -0.1}, {"lr": 0.0}, {"betas": (1.0, 0.92, 0.99)}, {"betas": (0.98, -0.1, 0.99)},
            {"betas": (0.98, 0.92, 1.0)}, {"betas": (0.98, 0.92, 1.5)}, {"weight_decay": -0.1},
            {"max_grad_norm": -1.0}, {"eps": -1e-8}]),
        ("Lamb", lambda o: pytorch_optimizer.Lamb(p(), **o), [
            {"lr": -0.1}, {"lr": 0.0}, {"betas": (1.0, 0.999)}, {"betas": (0.9, 1.0)}, {"weight_decay": -0.1},
            {"max_grad_norm": -1.0}, {"eps": -1e-6}]),
        ("AveragedModel", lambda o: get_ema_multi_avg_fn(o["decay"]), [
            {"strategy": "ema", "decay": 1.5}, {"strategy": "ema", "decay": -0.1}, {"strategy": "ema", "decay": 1.0},
            {"strategy": "ema", "decay": 0.0}]),
    ]
    out = []
    for name, build, optionss in probes:
        for o in optionss:
            try:
                build(o)
                err = None
            except Exception as e:  # the reference's own exception and message
                err = f"{type(e).__name__}: {e}"
            out.append({"optimizer": name, "options": clean(o), "error": err})
    return out


# ---------------------------------------------------------------------------------------------
# SWALR

def swalr_schedules():
    out = []
    base_lr, epochs = 0.1, 12
    for strategy in ["cos", "linear"]:
        for anneal in [1, 3, 5]:
            out.append((f"SWALR/{strategy},anneal_epochs={anneal}", {"swa_lr": 0.05, "anneal_epochs": anneal,
                                                                    "anneal_strategy": strategy}, base_lr, epochs))
        out.append((f"SWALR/{strategy},anneal_epochs=0", {"swa_lr": 0.05, "anneal_epochs": 0,
                                                         "anneal_strategy": strategy}, base_lr, 5))
        out.append((f"SWALR/{strategy},anneal_epochs=4,up", {"swa_lr": 0.3, "anneal_epochs": 4,
                                                            "anneal_strategy": strategy}, 0.01, 8))
    out.append(("SWALR/default", {"swa_lr": 0.02, "anneal_epochs": 10, "anneal_strategy": "cos"}, 0.1, 15))
    schedules = []
    for sid, options, lr0, n in out:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
        sched = SWALR(opt, **options)
        lrs = []
        for _ in range(n):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        schedules.append({"id": sid, "scheduler": "SWALR", "options": options, "base_lr": lr0, "epochs": n, "lrs": lrs})
    return schedules


def main():
    torch.set_num_threads(1)
    cases = lion_cases() + adan_cases() + lamb_cases() + sf_cases() + averaged_cases()
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    with open(os.path.join(HERE, "beyond_torch.json"), "w") as f:
        json.dump({"format": "optim-golden/1", "generator": GENERATOR, "cases": cases, "errors": errors()}, f)
    schedules = swalr_schedules()
    with open(os.path.join(HERE, "beyond_torch_schedulers.json"), "w") as f:
        json.dump({"format": "optim-golden/1", "generator": GENERATOR, "schedulers": schedules}, f, indent=1)
    print(len(cases), "cases,", len(schedules), "schedules")


main()
