#!/usr/bin/env python3
"""The constructor defaults of every optimizer the library reimplements, read from the reference
implementations' signatures:

    torch.optim.*      (torch 2.15.0): every optimizer class torch.optim exports
    Lion               lion_pytorch.Lion                  (lion-pytorch 0.2.5)
    Adan, Lamb         pytorch_optimizer.Adan / .Lamb     (pytorch-optimizer 4.1.0)
    ScheduleFreeAdamW  schedulefree.AdamWScheduleFree     (schedulefree 1.4.1)

Rerun from the repository root, with the peer venv (.venv-peers, gitignored) holding
torch==2.15.0 lion-pytorch==0.2.5 pytorch-optimizer==4.1.0 schedulefree==1.4.1:

    .venv-peers/bin/python Tests/OptimTests/Fixtures/generate_defaults.py

It writes defaults.json beside itself: {"format": "optim-defaults/1", "generator": ...,
"optimizers": {NAME: {OPTION: DEFAULT, ...}, ...}}, with NAME the optimizer's class name (the
library's name for the ones beyond torch) and every keyword argument of its constructor that has
a default, tuples as lists and None as null; parameters without a default (`params`) are left
out. Where construction fills in a default (LBFGS's `max_eval` None becomes `max_iter * 5 // 4`)
or a subclass fixes one (AdamW's `decoupled_weight_decay`), the value is the one the built
optimizer's `defaults` holds, as its parameter groups and state dicts show it.
"""
import importlib.metadata
import inspect
import json
import os

import torch
import lion_pytorch
import pytorch_optimizer
import schedulefree

from torch_bridge import constructor_defaults


def defaults(cls):
    values = constructor_defaults(cls)
    built = cls([torch.zeros(2, 2, requires_grad=True)]).defaults
    # torch's classes keep only options in `defaults`; the other references keep state there too.
    from_torch = cls.__module__.startswith("torch.optim")
    values.update({name: value for name, value in built.items() if name in values or from_torch})
    return {name: plain(value) for name, value in values.items()}


def plain(value):
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


optimizers = {}
for name in sorted(torch.optim.__all__):
    cls = getattr(torch.optim, name)
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer:
        optimizers[name] = defaults(cls)
optimizers["Lion"] = defaults(lion_pytorch.Lion)
optimizers["Adan"] = defaults(pytorch_optimizer.Adan)
optimizers["Lamb"] = defaults(pytorch_optimizer.Lamb)
optimizers["ScheduleFreeAdamW"] = defaults(schedulefree.AdamWScheduleFree)

document = {
    "format": "optim-defaults/1",
    "generator": "Tests/OptimTests/Fixtures/generate_defaults.py with " + ", ".join(
        "%s %s" % (package, importlib.metadata.version(package).split("+")[0])
        for package in ("torch", "lion-pytorch", "pytorch-optimizer", "schedulefree")),
    "optimizers": optimizers,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defaults.json")
with open(path, "w") as file:
    json.dump(document, file, indent=1, sort_keys=True)
    file.write("\n")
print("wrote %s (%d optimizers)" % (path, len(optimizers)))
