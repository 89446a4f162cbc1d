#!/usr/bin/env python3
"""Checks that Python's safetensors package reads a checkpoint file of this library as the
library meant it (PythonInteropTests runs it; it needs safetensors and numpy, not torch).

    python check_checkpoint.py CHECKPOINT.safetensors EXPECTED.json

EXPECTED.json, written by the Swift test beside the checkpoint:
    {"optimizer": "Adam", "state_dict": <the optimizer's OptimizerStateDict, JSON-encoded>,
     "model": {name: {"dtype": "float32", "shape": [...], "data": [...]}}}
Every entry is opened with safe_open(path, "np") (bfloat16, which numpy lacks, with the "pt"
framework when torch is there, else from the file's bytes) and its dtype, shape and values
compared exactly; the metadata's state_dict is parsed with json.loads and compared with the
expected state dict (each {"safetensors": entry} against the expected tensor); both hashes are
recomputed. Prints what differs; exits 0 when nothing does, 1 otherwise.
"""
import json
import os
import struct
import sys

import numpy as np
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bridge  # noqa: E402  (its checkpoint functions need no torch)

NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}
SAFETENSORS_NAMES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}


def main(path, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    problems = []

    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    data_start = 8 + length
    header.pop("__metadata__", None)

    def have_torch():
        try:
            import torch  # noqa: F401
            return True
        except ImportError:
            return False

    def read_entry(name):
        """(safetensors dtype, shape, float64 values) of an entry, through safetensors."""
        dtype = header[name]["dtype"]
        if dtype != "BF16":
            with safe_open(path, "np") as f:
                array = f.get_tensor(name)
            return dtype, list(array.shape), array.astype(np.float64).reshape(-1), str(array.dtype)
        if have_torch():
            with safe_open(path, "pt") as f:
                tensor = f.get_tensor(name)
            return dtype, list(tensor.shape), tensor.double().reshape(-1).numpy(), str(tensor.dtype)
        begin, end = header[name]["data_offsets"]
        bits = np.frombuffer(raw[data_start + begin:data_start + end], dtype="<u2").astype(np.uint32) << 16
        return dtype, list(header[name]["shape"]), bits.view(np.float32).astype(np.float64), "bfloat16 (from bytes)"

    def compare_tensor(name, want):
        if name not in header:
            problems.append(f"entry {name} is missing")
            return
        dtype, shape, values, seen = read_entry(name)
        if dtype != SAFETENSORS_NAMES[want["dtype"]]:
            problems.append(f"{name}: dtype {dtype}, expected {want['dtype']}")
        if want["dtype"] in NUMPY_DTYPES and seen != want["dtype"]:
            problems.append(f"{name}: numpy reads it as {seen}, expected {want['dtype']}")
        if shape != list(want["shape"]):
            problems.append(f"{name}: shape {shape}, expected {want['shape']}")
        wanted = np.array(want["data"], dtype=np.float64)
        if values.shape != wanted.shape or not np.array_equal(values, wanted):
            worst = float(np.max(np.abs(values - wanted))) if values.shape == wanted.shape else float("nan")
            problems.append(f"{name}: values differ (largest difference {worst})")

    # The metadata.
    with safe_open(path, "np") as f:
        metadata = f.metadata()
        keys = set(f.keys())
    for key, value in (("format", "swift-optim-checkpoint"), ("version", "1"), ("optimizer", expected["optimizer"])):
        if metadata.get(key) != value:
            problems.append(f"metadata {key} is {metadata.get(key)!r}, expected {value!r}")
    text = metadata["state_dict"]
    saved = json.loads(text)
    if torch_bridge.state_dict_hash(text) != metadata.get("state_dict_hash"):
        problems.append("state_dict_hash does not match the state dict's text")
    spans = sorted((tuple(header[name]["data_offsets"]), name) for name in header)
    chunks = [raw[data_start + begin:data_start + end] for (begin, end), _ in spans]
    if torch_bridge.data_hash(chunks) != metadata.get("data_hash"):
        problems.append("data_hash does not match the tensor bytes")

    # The state dict, against the one the optimizer returned.
    want = expected["state_dict"]
    if set(saved) != {"state", "param_groups"}:
        problems.append(f"state_dict has keys {sorted(saved)}")
    referenced = set()
    if set(saved["state"]) != set(want["state"]):
        problems.append(f"state ids {sorted(saved['state'])}, expected {sorted(want['state'])}")
    for pid, values in want["state"].items():
        got = saved["state"].get(pid, {})
        if set(got) != set(values):
            problems.append(f"state {pid} keys {sorted(got)}, expected {sorted(values)}")
        for key, value in values.items():
            if key not in got:
                continue
            if isinstance(value, dict) and "tensor" in value:
                reference = got[key].get("safetensors") if isinstance(got[key], dict) else None
                if reference != f"state.{pid}.{key}":
                    problems.append(f"state {pid} {key} is {got[key]!r}, expected a reference to state.{pid}.{key}")
                    continue
                referenced.add(reference)
                compare_tensor(reference, value["tensor"])
            elif got[key] != value:
                problems.append(f"state {pid} {key} is {got[key]!r}, expected {value!r}")
    if saved["param_groups"] != want["param_groups"]:
        problems.append(f"param_groups {saved['param_groups']!r}, expected {want['param_groups']!r}")

    # The model's tensors.
    for name, tensor in expected["model"].items():
        referenced.add(f"model.{name}")
        compare_tensor(f"model.{name}", tensor)
    if keys != referenced:
        problems.append(f"entries {sorted(keys - referenced)} are not expected; {sorted(referenced - keys)} are missing")

    for problem in problems:
        print(problem)
    print(f"checked {len(keys)} entries ({', '.join(sorted({header[k]['dtype'] for k in keys}))}), "
          f"{len(saved['state'])} parameter states, {len(saved['param_groups'])} groups: "
          f"{'OK' if not problems else f'{len(problems)} problems'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
