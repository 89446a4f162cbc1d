#!/usr/bin/env python3
"""torch's side of PythonInteropTests' runs moved between this library and torch.optim through
torch_bridge.py. Needs torch.

    python bridge_peer.py CASES.json WORKDIR RESULTS.json

CASES.json, written by the Swift test: {"cases": [CASE, ...]} with CASE
    {"name": ..., "torch_class": "Adam", "swift_type": "Adam", "options": {torch options},
     "second_group": {options of a second group} or null (one group),
     "params": [{"name": "p0", "dtype", "shape", "bytes": base64}, ...],   initial values
     "grads": [[{"dtype", "shape", "bytes"} per parameter] per step],     six steps
     "sparse": bool (gradients as row-sparse tensors), "checkpoint": Swift's checkpoint after step 5}

Per case:
  (a) `to-torch` converts Swift's checkpoint; its state dict is loaded into a torch optimizer
      over its model tensors, which takes step 6 with the case's sixth gradients;
  (b) torch runs steps 1-5 from the initial values, saves {"optimizer": state_dict(),
      "model": ..., "torch_class": ...} with torch.save, `from-torch` converts it to
      WORKDIR/<name>.b.safetensors for the Swift side to load, and torch takes step 6.
RESULTS.json: {"cases": {name: {"a": [parameters after step 6], "b": [...], "b_checkpoint": path,
"error": message or absent}}}, tensors as {"dtype", "shape", "bytes"} (base64 of their bytes).
"""
import base64
import json
import os
import sys
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bridge  # noqa: E402


def tensor(value):
    dtype = getattr(torch, value["dtype"])
    raw = base64.b64decode(value["bytes"])
    if not raw:
        return torch.zeros(value["shape"], dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(value["shape"]).clone()


def encode(t):
    return {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
            "bytes": base64.b64encode(torch_bridge.tensor_bytes(t)).decode("ascii")}


def set_gradients(params, grads, sparse):
    for p, g in zip(params, grads):
        g = tensor(g)
        p.grad = g.to_sparse(1) if sparse else g


def run_case(case, workdir):
    cls = torch_bridge.torch_class(case["torch_class"])
    names = [p["name"] for p in case["params"]]
    result = {}

    # (a) Swift's run, converted, continued by torch.
    converted = os.path.join(workdir, f"{case['name']}.a.pt")
    if torch_bridge.main(["to-torch", case["checkpoint"], converted]) != 0:
        raise RuntimeError("to-torch failed")
    saved = torch.load(converted, map_location="cpu", weights_only=True)
    if saved["torch_class"] != case["torch_class"]:
        raise RuntimeError(f"to-torch mapped {case['swift_type']} to {saved['torch_class']}")
    params = [saved["model"][name].clone().requires_grad_(True) for name in names]
    groups = saved["optimizer"]["param_groups"]
    optimizer = cls([{"params": [params[i] for i in group["params"]]} for group in groups])
    optimizer.load_state_dict(saved["optimizer"])
    set_gradients(params, case["grads"][5], case["sparse"])
    optimizer.step()
    result["a"] = [encode(p.detach()) for p in params]

    # (b) torch's run, converted for Swift to continue.
    params = [tensor(p).requires_grad_(True) for p in case["params"]]
    if case["second_group"] is None:
        groups = [{"params": params}]
    else:
        groups = [{"params": params[:1]}, {"params": params[1:], **case["second_group"]}]
    options = {key: tuple(value) if isinstance(value, list) else value for key, value in case["options"].items()}
    optimizer = cls(groups, **options)
    for step in range(5):
        set_gradients(params, case["grads"][step], case["sparse"])
        optimizer.step()
    source = os.path.join(workdir, f"{case['name']}.b.pt")
    torch.save({"format": torch_bridge.BRIDGE_FORMAT, "torch_class": case["torch_class"],
                "optimizer": optimizer.state_dict(),
                "model": {name: p.detach().clone() for name, p in zip(names, params)}}, source)
    checkpoint = os.path.join(workdir, f"{case['name']}.b.safetensors")
    if torch_bridge.main(["from-torch", source, checkpoint, "--swift-type", case["swift_type"]]) != 0:
        raise RuntimeError("from-torch failed")
    set_gradients(params, case["grads"][5], case["sparse"])
    optimizer.step()
    result["b"] = [encode(p.detach()) for p in params]
    result["b_checkpoint"] = checkpoint
    return result


def main(cases_path, workdir, results_path):
    with open(cases_path) as f:
        cases = json.load(f)["cases"]
    results = {}
    for case in cases:
        try:
            results[case["name"]] = run_case(case, workdir)
        except Exception as error:  # reported per case to the Swift test
            results[case["name"]] = {"error": f"{type(error).__name__}: {error}\n{traceback.format_exc()}"}
    with open(results_path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
