#!/usr/bin/env python3
"""Reference cases from torch's own optimizer test table, in the optim-golden/1 format
(Docs/golden.md), produced with PyTorch on CPU.

torch tests each optimizer of torch.optim with the option sets its table lists
(`torch.testing._internal.common_optimizers.optim_db`: an entry's `optim_inputs_func`) and
checks the inputs it must refuse (`optim_error_inputs_func`). This script turns the table, as
the installed torch holds it, into torch_table.json beside itself:

- One trajectory case per option set and dtype (float32, float64), 6 steps (RAdam's
  rectified branch starts at step 6 under its default betas), reference
  `forloop` (`foreach=False` where the constructor has it). Parameters of 3, 17 and 65
  elements (shapes [3], [17], [5, 13]): each leaves a partial vector at every vector width,
  and 85 elements in all span two chunks of 64. An optimizer that refuses vectors (Muon) gets
  matrices of the same sizes ([1, 3], [17, 1], [5, 13]). Closure-driven optimizers (LBFGS)
  minimize the Rosenbrock function of the concatenated parameters (`objective`), 3 steps;
  optimizers that take only sparse gradients (SparseAdam) get row-sparse ones.
- One non-finite case per gradient-driven option set and dtype: 3 steps, the last two with
  NaN, +inf and -inf gradient elements (NON_FINITE) in first, middle and last lanes of
  vectors, in tails, and on both sides of the chunk boundary at element 64. LBFGS has none:
  its gradients come from the objective.
- One `errors` entry per error input, run through torch here to record its message. An entry
  gives `options` and `params` (the parameter shapes to build with); an input this format
  cannot express (parameters passed as a bare tensor or a set, named parameters, parameter
  groups, complex or sparse parameters, Tensor-valued options, a step-time error) carries
  `"unsupported": reason` instead, and the replay reports it as unsupported with that reason.

Option values as torch holds them in its parameter group: a Tensor lr (the table's
"Tensor lr" rows) is written as its number, tuples as lists. Every case draws its data from
its own generator, seeded from its id, so a rerun with the same torch gives the same bytes.

Rerun from the repository root, with the peer venv (.venv-peers, gitignored) holding
torch==2.15.0 and expecttest (which the table imports):

    .venv-peers/bin/pip install torch==2.15.0 expecttest
    .venv-peers/bin/python Tests/OptimTests/Fixtures/generate_torch_table.py
"""
import inspect
import json
import math
import os
import warnings
import zlib

import torch
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = f"torch {torch.__version__} (generate_torch_table.py)"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOLERANCE = {"float32": (2e-5, 1e-6), "float64": (1e-10, 1e-12)}
# LBFGS's line searches and history amplify rounding differences step by step.
CLOSURE_TOLERANCE = {"float32": (1e-3, 1e-4), "float64": (1e-7, 1e-9)}
VECTOR_SHAPES = [[3], [17], [5, 13]]
MATRIX_SHAPES = [[1, 3], [17, 1], [5, 13]]
STEPS = 6
CLOSURE_STEPS = 3
NON_FINITE_STEPS = 3
# step -> [(parameter, flat index, value)]. Step 1 is finite, so that state exists before the
# first non-finite element arrives (Rprop's previous gradient, Adam's moments). Elements of
# the concatenation: the third parameter starts at 20, so its index 43 is element 63 (the last
# before the chunk boundary at 64), 44 is element 64 and 64 is element 84 (the last, a tail
# lane); the second parameter's index 16 is its last (a one-element tail).
NON_FINITE = {
    2: [(0, 1, math.nan), (1, 16, math.inf), (2, 64, -math.inf), (2, 7, math.nan), (2, 44, math.inf)],
    3: [(1, 0, -math.inf), (2, 43, math.nan), (0, 2, math.inf), (2, 20, -math.inf), (1, 8, math.nan)],
}
# Keys of a parameter group that are not options.
NOT_OPTIONS = {"params", "param_names"}


def tolist(t):
    return t.detach().to(torch.float64).reshape(-1).tolist()


def plain(value):
    """An option value as JSON: one-element tensors as numbers, tuples as lists."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else tolist(value)
    return value


def generator_for(case_id):
    return torch.Generator().manual_seed(zlib.crc32(case_id.encode()))


def takes(cls, name):
    return name in inspect.signature(cls.__init__).parameters


def construct(info, params, kwargs):
    cls = info.optim_cls
    extra = {"foreach": False} if takes(cls, "foreach") and "foreach" not in kwargs else {}
    return cls(params, **kwargs, **extra)


def accepted_shapes(info, kwargs):
    """The parameter shapes this optimizer accepts with `kwargs`: vectors, else matrices."""
    for shapes in (VECTOR_SHAPES, MATRIX_SHAPES):
        try:
            construct(info, [torch.zeros(s) for s in shapes], kwargs)
            return shapes
        except ValueError:
            continue
    raise RuntimeError(f"{info.optim_cls.__name__} refuses {kwargs} on vectors and matrices")


def state_of(opt, p, scalars_only=False):
    out = {}
    for key, value in opt.state.get(p, {}).items():
        if isinstance(value, torch.Tensor) and not scalars_only:
            out[key] = value.item() if value.dim() == 0 else tolist(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
        else:
            out[key] = None
    return out


def options_of(group):
    return {k: plain(v) for k, v in group.items() if k not in NOT_OPTIONS}


def rosenbrock(x):
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def gradient_case(info, optim_input, dtype, non_finite):
    name = info.optim_cls.__name__
    case_id = f"{name}/{optim_input.desc}{', non-finite gradients' if non_finite else ''}/{dtype}"
    return with_numbers_for_tensors(case_id, optim_input.kwargs,
                                    lambda kwargs: gradient_run(info, case_id, kwargs, dtype, non_finite))


def gradient_run(info, case_id, kwargs, dtype, non_finite):
    tdtype = DTYPES[dtype]
    random = generator_for(case_id)
    shapes = accepted_shapes(info, kwargs)
    params = [torch.randn(s, generator=random, dtype=torch.float64).to(tdtype) for s in shapes]
    initial = [tolist(p) for p in params]
    opt = construct(info, params, dict(kwargs))
    sparse = info.only_supports_sparse_grads
    steps = []
    for step in range(1, (NON_FINITE_STEPS if non_finite else STEPS) + 1):
        grads = []
        for index, p in enumerate(params):
            if sparse:
                rows = p.shape[0]
                count = 1 + int(torch.randint(rows + 1, (1,), generator=random))
                indices = torch.randint(rows, (count,), generator=random).tolist()
                values = torch.randn([count] + list(p.shape[1:]), generator=random, dtype=torch.float64).to(tdtype)
            else:
                values = torch.randn(p.shape, generator=random, dtype=torch.float64).to(tdtype)
            if non_finite:
                flat = values.view(-1)
                for target, position, value in NON_FINITE.get(step, []):
                    if target == index and position < flat.numel():
                        flat[position] = value
            if sparse:
                p.grad = torch.sparse_coo_tensor(torch.tensor([indices]), values, p.shape)
                grads.append({"sparse": True, "indices": indices, "values": tolist(values)})
            else:
                p.grad = values.clone()
                grads.append(tolist(values))
        opt.step()
        steps.append({"grads": grads, "params": [tolist(p) for p in params]})
    rtol, atol = TOLERANCE[dtype]
    return {"id": case_id, "optimizer": info.optim_cls.__name__, "dtype": dtype,
            "groups": [{"params": list(range(len(params))), "options": options_of(opt.param_groups[0])}],
            "params": [{"shape": s, "data": d} for s, d in zip(shapes, initial)],
            "steps": steps, "state": [state_of(opt, p) for p in params],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": "forloop"}


def closure_case(info, optim_input, dtype):
    case_id = f"{info.optim_cls.__name__}/{optim_input.desc}/{dtype}"
    return with_numbers_for_tensors(case_id, optim_input.kwargs, lambda kwargs: closure_run(info, case_id, kwargs, dtype))


def closure_run(info, case_id, kwargs, dtype):
    tdtype = DTYPES[dtype]
    random = generator_for(case_id)
    shapes = accepted_shapes(info, kwargs)
    params = [(torch.randn(s, generator=random, dtype=torch.float64) * 0.5 - 0.5).to(tdtype).requires_grad_(True)
              for s in shapes]
    initial = [tolist(p) for p in params]
    opt = construct(info, params, dict(kwargs))
    steps = []
    for _ in range(CLOSURE_STEPS):
        evaluations = [0]

        def closure():
            evaluations[0] += 1
            opt.zero_grad()
            loss = rosenbrock(torch.cat([p.reshape(-1) for p in params]))
            loss.backward()
            return loss

        loss = opt.step(closure)
        steps.append({"loss": float(loss.detach()), "evaluations": evaluations[0],
                      "params": [tolist(p) for p in params]})
    rtol, atol = CLOSURE_TOLERANCE[dtype]
    return {"id": case_id, "optimizer": info.optim_cls.__name__, "dtype": dtype,
            "groups": [{"params": list(range(len(params))), "options": options_of(opt.param_groups[0])}],
            "params": [{"shape": s, "data": d} for s, d in zip(shapes, initial)],
            "steps": steps, "state": [state_of(opt, params[0], scalars_only=True)] + [{} for _ in params[1:]],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": "forloop", "objective": "rosenbrock"}


def tensor_valued(kwargs):
    return sorted(k for k, v in kwargs.items()
                  if isinstance(v, torch.Tensor) or isinstance(v, (tuple, list)) and any(isinstance(x, torch.Tensor) for x in v))


def with_numbers_for_tensors(case_id, kwargs, run):
    """The case `run` makes with torch's `kwargs`. Where an option is a Tensor (the table's
    "Tensor lr" rows), the file can only give its number: torch runs again with the numbers,
    and a case whose trajectory then differs in any bit is marked unsupported, since torch
    computes with the tensor in its own dtype (a float32 lr rounds Muon's 1 - lr * weight_decay
    to float32 for float64 parameters)."""
    case = run(kwargs)
    tensors = tensor_valued(kwargs)
    if tensors:
        with_numbers = run({k: plain(v) for k, v in kwargs.items()})
        differing = [(s, p) for s, (a, b) in enumerate(zip(case["steps"], with_numbers["steps"]))
                     for p, (x, y) in enumerate(zip(a["params"], b["params"])) if not same_values(x, y)]
        if differing:
            step, parameter = differing[0]
            dtypes = ", ".join(f"{k} {getattr(kwargs[k], 'dtype', 'tensors')}" for k in tensors)
            case["unsupported"] = (f"Tensor-valued option ({dtypes}) with {case['dtype']} parameters: torch computes "
                                   f"with the tensor in its dtype, and the same options as numbers differ from step "
                                   f"{step + 1} (parameter {parameter}); this library takes numbers")
    return case


def same_values(a, b):
    """Equal lists of floats, NaN equal to NaN."""
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def inexpressible(params, kwargs, error_on, error_type):
    """Why errors.json (options and parameter shapes) cannot state this input, or None."""
    if error_on != OptimizerErrorEnum.CONSTRUCTION_ERROR:
        return "torch refuses it when it steps; errors.json entries are built, not stepped"
    if issubclass(error_type, Warning):
        return f"torch accepts it with a {error_type.__name__}; errors.json records refusals and acceptances"
    tensors = [k for k, v in kwargs.items()
               if isinstance(v, torch.Tensor) and v.numel() == 1
               or isinstance(v, (tuple, list)) and any(isinstance(x, torch.Tensor) for x in v)]
    if tensors:
        return f"Tensor-valued option {', '.join(tensors)}: this library takes numbers"
    if params is None:
        return None
    if isinstance(params, torch.Tensor):
        return "parameters passed as one tensor instead of an iterable: a Python-API check"
    if isinstance(params, set):
        return "parameters passed as an unordered set: a Python-API check"
    if any(isinstance(p, dict) for p in params):
        return "parameter groups: errors.json gives one list of parameter shapes"
    if any(isinstance(p, (tuple, list)) for p in params):
        return "named parameters: errors.json gives parameter shapes, not names"
    if any(p.is_complex() for p in params):
        return "complex parameters: this library has no complex dtype"
    if any(p.layout != torch.strided for p in params):
        return "sparse parameters: this library takes row-sparse gradients, not sparse parameters"
    return None


def describe(value):
    """A JSON stand-in for an option value that the format cannot hold (a tensor)."""
    if isinstance(value, torch.Tensor):
        return f"Tensor({plain(value)})"
    if isinstance(value, (tuple, list)):
        return [describe(v) for v in value]
    return value


def torch_outcome(info, params, kwargs, error_on):
    """torch's message when it refuses the input, or None when it accepts it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = info.optim_cls(params, **kwargs)
            if error_on == OptimizerErrorEnum.STEP_ERROR:
                for group in opt.param_groups:
                    for p in group["params"]:
                        p.grad = torch.ones_like(p)
                opt.step((lambda: torch.zeros(())) if info.step_requires_closure else None)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def error_entries(info):
    name = info.optim_cls.__name__
    entries, seen = [], {}
    for error_input in info.optim_error_inputs_func(device="cpu", dtype=torch.float32):
        given = error_input.optimizer_error_input
        kwargs = dict(given.kwargs)
        reason = inexpressible(given.params, kwargs, error_input.error_on, error_input.error_type)
        # Two inputs of one optimizer may share a description (Adam's mixed float and Tensor betas).
        case_id = f"errors/{name}/{given.desc}"
        seen[case_id] = seen.get(case_id, 0) + 1
        if seen[case_id] > 1:
            case_id += f" ({seen[case_id]})"
        entry = {"id": case_id, "optimizer": name}
        if reason is None:
            shapes = ([list(p.shape) for p in given.params] if given.params is not None
                      else accepted_shapes(info, {}))
            params = [torch.zeros(s) for s in shapes]
            entry.update(options={k: plain(v) for k, v in kwargs.items()}, params=[{"shape": s} for s in shapes],
                         error=torch_outcome(info, params, kwargs, error_input.error_on))
        else:
            params = given.params if given.params is not None else [torch.zeros(s) for s in accepted_shapes(info, {})]
            entry.update(options={k: describe(v) for k, v in kwargs.items()},
                         error=torch_outcome(info, params, kwargs, error_input.error_on), unsupported=reason)
        entries.append(entry)
    return entries


def main():
    cases, errors = [], []
    for info in optim_db:
        for optim_input in info.optim_inputs_func(device="cpu", dtype=torch.float32):
            if optim_input.params is not None:
                raise RuntimeError(f"{info.optim_cls.__name__}/{optim_input.desc} gives its own parameters")
            for dtype in DTYPES:
                if info.step_requires_closure:
                    cases.append(closure_case(info, optim_input, dtype))
                else:
                    cases.append(gradient_case(info, optim_input, dtype, non_finite=False))
                    cases.append(gradient_case(info, optim_input, dtype, non_finite=True))
        errors.extend(error_entries(info))
    path = os.path.join(HERE, "torch_table.json")
    with open(path, "w") as f:
        json.dump({"format": "optim-golden/1", "generator": GENERATOR, "cases": cases, "errors": errors}, f,
                  separators=(",", ":"))
    print(f"{path}: {len(cases)} cases, {len(errors)} error inputs "
          f"({sum('unsupported' in e for e in errors)} unsupported)")


if __name__ == "__main__":
    main()
