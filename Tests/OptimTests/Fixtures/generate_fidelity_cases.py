#!/usr/bin/env python3
"""Reference cases made with PyTorch (CPU) where this library once went another way than torch
2.15, in the optim-golden/1 format (Docs/golden.md), for `optim verify-golden` and the tests:

- SGD with momentum on float16 and bfloat16 against torch's fused CPU kernel, and on float32 and
  float64 against its for-loop path: torch adds every product with one rounding (fma); rounding
  the product first moved a float16 parameter by 6 ulps where its update nearly cancels it.
  Compared bit for bit.
- Muon in float64 and float32 (ns_steps 6, lr 1e-3 and 0.02): torch's addmm adds beta * C to
  alpha * AB with one rounding; rounding beta * C first sends a cancelling entry of the
  Newton-Schulz polynomial to the other bfloat16 neighbour.
- LBFGS with maximize and the strong-Wolfe search on Rosenbrock, and with a small max_eval:
  torch's search may spend only the evaluations the step has left.
- Adagrad: torch makes the state of every parameter when it builds the optimizer (a parameter
  that never gets a gradient has step 0 and a sum), every sum starting at the constructor's
  initial_accumulator_value whatever a group says.
- LBFGS in float32, whose scalars torch keeps in float32 tensors.
- "errors": every numeric option of every torch.optim optimizer at values around its bounds,
  with torch's constructor message, or null and the first step's message ("step_error") where
  only the step refuses it.

    .venv-peers/bin/python Tests/OptimTests/Fixtures/generate_fidelity_cases.py

writes fidelity_cases.json beside this script. Every case is seeded: a rerun with the same
torch gives the same file. Needs torch; the tests do not.
"""
import inspect
import json
import math
import os

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOLERANCE = {"float32": (2e-5, 1e-6), "float64": (1e-10, 1e-12), "bfloat16": (0.016, 1e-3), "float16": (2e-3, 1e-4)}
EXACT = (0.0, 0.0)
SET_BY_IMPLEMENTATION = {"params", "foreach", "fused", "capturable", "differentiable", "param_names"}


def values(tensor):
    return tensor.detach().to(torch.float64).reshape(-1).tolist()


def plain(value):
    if isinstance(value, (tuple, list)):
        return [plain(item) for item in value]
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def group_options(group):
    return {key: plain(value) for key, value in group.items() if key not in SET_BY_IMPLEMENTATION}


def saved_state(optimizer, parameter):
    """A parameter's state by torch's keys: scalars as numbers, tensors as lists of values."""
    state = {}
    for key, value in optimizer.state.get(parameter, {}).items():
        if isinstance(value, torch.Tensor):
            state[key] = value.item() if value.dim() == 0 and key == "step" else values(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            state[key] = value
        else:
            state[key] = None
    return state


def gradient_case(case_id, name, dtype, shapes, groups, seed, steps, *, reference="forloop", tolerance=None,
                  constructor=None, missing=(), scale=1.0):
    """Steps torch's `name` over random parameters with random gradients (None for the
    parameters in `missing`, at every step). `groups` are (parameter indices, options); the first
    group's options are the constructor's unless `constructor` gives them."""
    generator = torch.Generator().manual_seed(seed)
    kind = DTYPES[dtype]
    parameters = [torch.randn(shape, generator=generator, dtype=torch.float64).to(kind) for shape in shapes]
    initial = [values(p) for p in parameters]
    constructor = dict(groups[0][1] if constructor is None else constructor)
    torch_groups = [{"params": [parameters[i] for i in indices], **options} for indices, options in groups]
    if reference == "fused":
        constructor["fused"] = True
    elif name not in ("LBFGS", "Muon", "Adafactor", "SparseAdam"):
        constructor["foreach"] = False
    optimizer = getattr(torch.optim, name)(torch_groups, **constructor)
    trajectory = []
    for _ in range(steps):
        grads = []
        for index, parameter in enumerate(parameters):
            if index in missing:
                parameter.grad = None
                grads.append(None)
                continue
            grad = (torch.randn(parameter.shape, generator=generator, dtype=torch.float64) * scale).to(kind)
            parameter.grad = grad.clone()
            grads.append(values(grad))
        optimizer.step()
        trajectory.append({"grads": grads, "params": [values(p) for p in parameters]})
    rtol, atol = tolerance or TOLERANCE[dtype]
    return {"id": case_id, "optimizer": name, "dtype": dtype,
            "groups": [{"params": list(indices), "options": group_options(group)}
                       for (indices, _), group in zip(groups, optimizer.param_groups)],
            "params": [{"shape": list(shape), "data": data} for shape, data in zip(shapes, initial)],
            "steps": trajectory, "state": [saved_state(optimizer, p) for p in parameters],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": reference}


def rosenbrock(x):
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def lbfgs_case(case_id, dtype, start, options, steps, tolerance=None):
    kind = DTYPES[dtype]
    parameter = torch.tensor(start, dtype=torch.float64).to(kind).requires_grad_(True)
    initial = values(parameter)
    optimizer = torch.optim.LBFGS([parameter], **options)
    trajectory = []
    for _ in range(steps):
        evaluations = [0]

        def closure():
            evaluations[0] += 1
            optimizer.zero_grad()
            loss = rosenbrock(parameter)
            loss.backward()
            return loss

        loss = optimizer.step(closure)
        trajectory.append({"loss": float(loss.detach()), "evaluations": evaluations[0], "params": [values(parameter)]})
    kept = optimizer.state[parameter]
    state = {key: (value if isinstance(value, (int, float)) and not isinstance(value, bool) else None)
             for key, value in kept.items()}
    rtol, atol = tolerance or {"float64": (1e-7, 1e-9), "float32": (1e-3, 1e-4)}[dtype]
    return {"id": case_id, "optimizer": "LBFGS", "dtype": dtype,
            "groups": [{"params": [0], "options": group_options(optimizer.param_groups[0])}],
            "params": [{"shape": [len(start)], "data": initial}], "steps": trajectory, "state": [state],
            "tolerance": {"rtol": rtol, "atol": atol}, "reference": "forloop", "objective": "rosenbrock"}


def alternating(n):
    return [-1.2 if i % 2 == 0 else 1.0 for i in range(n)]


def cases():
    made = []
    # SGD: seed 5 is the first of 40 where rounding each product before its add leaves torch's
    # bits on the 65-element float16 case (element 64, a whole ulp, at step 13).
    momentum = {"lr": 0.1, "momentum": 0.9}
    made.append(gradient_case("SGD/fused-momentum-65/float16", "SGD", "float16", [[65]],
                              [([0], momentum)], 5, 13, reference="fused", tolerance=EXACT))
    sgd_options = [
        ("momentum", momentum),
        ("dampening", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
        ("nesterov-decay", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("maximize-decay", {"lr": 0.1, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.2, "maximize": True}),
        ("decay", {"lr": 0.1, "weight_decay": 0.3}),
    ]
    for label, options in sgd_options:
        for dtype in ("float16", "bfloat16"):
            made.append(gradient_case(f"SGD/fused-{label}/{dtype}", "SGD", dtype, [[200], [3, 7]],
                                      [([0, 1], options)], 10, 10, reference="fused", tolerance=EXACT))
        for dtype in ("float32", "float64"):
            made.append(gradient_case(f"SGD/forloop-{label}/{dtype}", "SGD", dtype, [[200], [3, 7]],
                                      [([0, 1], options)], 11, 10, tolerance=EXACT))

    # Muon on a 6 x 6 matrix: seeds (of the first 40) where rounding beta * C before the add
    # flips a bfloat16 rounding of the Newton-Schulz iteration within 8 steps; then a wide and a
    # tall matrix.
    for label, options, seed in [("ns_steps=6", {"ns_steps": 6}, 3), ("lr=0.001", {"lr": 0.001}, 2),
                                 ("ns_steps=6,lr=0.02", {"ns_steps": 6, "lr": 0.02}, 16)]:
        for dtype in ("float64", "float32"):
            made.append(gradient_case(f"Muon/{label}/6x6/{dtype}", "Muon", dtype, [[6, 6]],
                                      [([0], options)], seed, 8))
    made.append(gradient_case("Muon/ns_steps=6/4x7,7x3/float64", "Muon", "float64", [[4, 7], [7, 3]],
                              [([0, 1], {"ns_steps": 6, "lr": 0.02})], 16, 8))

    # LBFGS: maximize walks Rosenbrock uphill until the search's budget ends it.
    made.append(lbfgs_case("LBFGS/maximize-strong_wolfe/rosenbrock5/float64", "float64", alternating(5),
                           {"line_search_fn": "strong_wolfe", "maximize": True}, 3))
    made.append(lbfgs_case("LBFGS/maximize-fixed-step/rosenbrock5/float64", "float64", alternating(5),
                           {"lr": 1e-4, "max_iter": 5, "maximize": True}, 3))
    for max_eval in (3, 7, 12):
        made.append(lbfgs_case(f"LBFGS/max_eval={max_eval}-strong_wolfe/rosenbrock6/float64", "float64",
                               alternating(6), {"line_search_fn": "strong_wolfe", "max_eval": max_eval}, 4))

    # Adagrad: parameter 1 never gets a gradient; the second group's initial_accumulator_value is
    # not the constructor's.
    for dtype in ("float32", "float64"):
        made.append(gradient_case(f"Adagrad/state-when-built/{dtype}", "Adagrad", dtype, [[4], [2, 3], [5]],
                                  [([0, 1], {"lr": 0.1, "initial_accumulator_value": 0.5}),
                                   ([2], {"initial_accumulator_value": 2.0, "lr_decay": 0.1})],
                                  21, 4, missing=(1,)))
    made.append(gradient_case("Adagrad/state-when-built-fused/float32", "Adagrad", "float32", [[33], [3]],
                              [([0, 1], {"lr": 0.05, "initial_accumulator_value": 0.25})], 22, 3,
                              reference="fused", missing=(1,)))

    # LBFGS in float32.
    for n, line_search, seed_shift in [(2, "strong_wolfe", 0.0), (5, "strong_wolfe", 0.1), (8, "strong_wolfe", -0.05),
                                       (3, None, 0.0), (6, None, 0.05)]:
        label = "strong_wolfe" if line_search else "fixed-step"
        options = {"line_search_fn": line_search} if line_search else {"lr": 0.05, "max_iter": 10}
        start = [x + seed_shift for x in alternating(n)]
        made.append(lbfgs_case(f"LBFGS/{label}/rosenbrock{n}/float32", "float32", start, options, 3))
    return made


# ---- Option checks -----------------------------------------------------------------------

REALS = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, math.nan, math.inf, -math.inf]
COUNTS = [-1, 0, 1, 99, 100]
COUNT_OPTIONS = {"max_iter", "max_eval", "history_size", "ns_steps"}
NAMES = {"line_search_fn": ["strong_wolfe", "armijo"], "adjust_lr_fn": ["original", "match_rms_adamw",
                                                                         "spectral_unclamped", "bogus"]}
OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "ASGD", "LBFGS", "NAdam", "RAdam",
              "Rprop", "SparseAdam", "Adafactor", "Muon"]


def deliberately_refused(name, option, value):
    """Values torch accepts and this library refuses on purpose (Docs/golden.md): non-finite
    numbers, LBFGS counts below 1, Muon's negative eps and ns_steps."""
    numbers = value if isinstance(value, list) else [value]
    if any(isinstance(x, float) and not math.isfinite(x) for x in numbers):
        return True
    if name == "LBFGS" and option in ("max_iter", "max_eval") and value < 1:
        return True
    return name == "Muon" and option in ("eps", "ns_steps") and value < 0


def probes(name):
    signature = inspect.signature(getattr(torch.optim, name).__init__)
    for option, parameter in signature.parameters.items():
        default = parameter.default
        if option in SET_BY_IMPLEMENTATION or option == "self" or isinstance(default, bool):
            continue
        if option in NAMES:
            for value in NAMES[option]:
                yield option, value
        elif isinstance(default, tuple):
            for index in range(len(default)):
                for value in REALS:
                    changed = list(default)
                    changed[index] = value
                    yield option, changed
        elif option in COUNT_OPTIONS:
            for value in COUNTS:
                yield option, value
        elif isinstance(default, (int, float)):
            for value in REALS:
                yield option, value


def first_step_error(name, optimizer, parameter):
    try:
        if name == "LBFGS":
            def closure():
                optimizer.zero_grad()
                loss = ((parameter - 3) ** 2).sum()
                loss.backward()
                return loss
            optimizer.step(closure)
        else:
            parameter.grad = torch.ones_like(parameter)
            if name == "SparseAdam":
                parameter.grad = parameter.grad.to_sparse()
            optimizer.step()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def errors():
    made = []
    for name in OPTIMIZERS:
        for option, value in probes(name):
            if deliberately_refused(name, option, value):
                continue
            parameter = torch.zeros(2, 2) if name == "Muon" else torch.zeros(2)
            parameter.requires_grad_(name == "LBFGS")
            entry = {"optimizer": name, "options": {option: value}}
            try:
                optimizer = getattr(torch.optim, name)([parameter], **{option: value})
            except Exception as error:
                entry["error"] = f"{type(error).__name__}: {error}"
            else:
                entry["error"] = None
                step_error = first_step_error(name, optimizer, parameter)
                if step_error:
                    entry["step_error"] = step_error
            made.append(entry)
    return made


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    document = {"format": "optim-golden/1",
                "generator": f"generate_fidelity_cases.py with torch {torch.__version__}",
                "cases": cases(), "errors": errors()}
    with open(os.path.join(here, "fidelity_cases.json"), "w") as file:
        json.dump(document, file)
    print(len(document["cases"]), "cases,", len(document["errors"]), "option checks")


if __name__ == "__main__":
    main()
