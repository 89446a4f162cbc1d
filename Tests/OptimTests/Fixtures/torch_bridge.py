#!/usr/bin/env python3
"""Converts this library's checkpoint files (Docs/checkpoints.md) to and from torch.optim state dicts.

    python torch_bridge.py to-torch CHECKPOINT.safetensors OUT.pt
    python torch_bridge.py from-torch IN.pt CHECKPOINT.safetensors [--torch-class NAME] [--swift-type NAME]

`to-torch` writes, with `torch.save`, a dict
    {"format": "swift-optim-torch-bridge/1", "torch_class": "Adam", "swift_type": "Adam",
     "optimizer": <state dict for torch.optim.Adam.load_state_dict>, "model": {name: tensor}}
where "model" holds the checkpoint's `model.<name>` tensors. The state dict is torch's layout:
state tensors keep their dtype (`step` a 0-d float32 tensor), every parameter group holds every
constructor option of the torch class (those the checkpoint lacks, such as `foreach`, at the
constructor's default; tuple options such as `betas` as tuples) and `params`, the parameter ids.

`from-torch` reads such a dict, or a bare state dict (then --torch-class names its class), and
writes a checkpoint that `Checkpoint.load` accepts: every tensor of the state dict a
safetensors entry, the rest JSON in the metadata, with the format's hashes. The Swift type
defaults to the class's counterpart (torch.optim.Adam -> Adam); --swift-type picks another
(`RuleOptimizer<AdamRule>`, the library's Adam written as a Swift rule).

Only torch is needed, and only for the conversions: reading, checking and writing checkpoint
files (`read_checkpoint`, `write_checkpoint`, `bit_hash`) works with the standard library.
"""
import argparse
import inspect
import json
import os
import struct
import sys

FORMAT = "swift-optim-checkpoint"
VERSION = "1"
BRIDGE_FORMAT = "swift-optim-torch-bridge/1"

# The library's Swift type (the checkpoint's `optimizer`) -> torch.optim class name, for the
# catalog entries (Sources/Optim/Catalog/OptimizerCatalog.swift) whose reference is torch.optim.
SWIFT_TO_TORCH = {
    "SGD": "SGD", "Adam": "Adam", "AdamW": "AdamW", "RMSprop": "RMSprop", "Adagrad": "Adagrad",
    "Adadelta": "Adadelta", "Adamax": "Adamax", "ASGD": "ASGD", "NAdam": "NAdam", "RAdam": "RAdam",
    "Rprop": "Rprop", "SparseAdam": "SparseAdam", "LBFGS": "LBFGS", "Adafactor": "Adafactor",
    "Muon": "Muon",
    # SwiftAdam, Adam's rule written in Swift.
    "RuleOptimizer<AdamRule>": "Adam",
}
# torch.optim class name -> the Swift type written by default.
TORCH_TO_SWIFT = {torch_name: swift for swift, torch_name in SWIFT_TO_TORCH.items() if swift == torch_name}
# Catalog entries without a torch.optim counterpart (their references are other packages).
NO_TORCH_COUNTERPART = {
    "RuleOptimizer<LionRule>": "Lion (lion-pytorch)", "Adan": "Adan (pytorch-optimizer)",
    "Lamb": "Lamb (pytorch-optimizer)", "ScheduleFreeAdamW": "schedule-free AdamW (schedulefree)",
}

SAFETENSORS_DTYPES = {"F32": ("float32", 4), "F64": ("float64", 8), "F16": ("float16", 2), "BF16": ("bfloat16", 2)}
MASK = (1 << 64) - 1


class BridgeError(Exception):
    pass


# MARK: The format's hash (optim_hash_bytes in Sources/COptimKernels/Convert.cpp)

def bit_hash(data, seed=0):
    """The 64-bit multiply-xorshift hash of `data` (bytes) from `seed`, as the library computes it."""
    count = len(data)
    h = (seed ^ ((0x9E3779B97F4A7C15 * (count + 1)) & MASK)) & MASK
    full = count // 8 * 8
    for (word,) in struct.iter_unpack("<Q", memoryview(data)[:full]):
        h ^= word
        h = (h * 0xBF58476D1CE4E5B9) & MASK
        h ^= h >> 31
    tail = int.from_bytes(bytes(data[full:]), "little")
    h ^= tail
    h = (h * 0x94D049BB133111EB) & MASK
    h ^= h >> 29
    return h


def hex64(value):
    return f"{value:016x}"


def state_dict_hash(text):
    """`state_dict_hash`: the hash of the state dict's JSON text, as UTF-8."""
    return hex64(bit_hash(text.encode("utf-8")))


HASH_BLOCK_BYTES = 1 << 20


def data_hash(chunks):
    """`data_hash`: the entries' bytes in the order of their offsets, each entry cut into blocks of
    1 MiB (the last one shorter), each block hashed from the previous block's hash."""
    h = 0
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), HASH_BLOCK_BYTES):
            h = bit_hash(view[start:start + HASH_BLOCK_BYTES], h)
    return hex64(h)


# MARK: Checkpoint files, without torch

def read_checkpoint(path):
    """(metadata, state dict with {"safetensors": name} references, {entry: (dtype, shape, bytes)}).

    Checks the format, version and both hashes, as the library's reader does."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise BridgeError(f"{path}: {len(raw)} bytes, too short for a safetensors file")
    (length,) = struct.unpack("<Q", raw[:8])
    if 8 + length > len(raw):
        raise BridgeError(f"{path}: its header length {length} does not fit in the file")
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    metadata = header.pop("__metadata__", None) or {}
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise BridgeError(f"{path}: not a {FORMAT} file of version {VERSION} "
                          f"(format {metadata.get('format')!r}, version {metadata.get('version')!r})")
    text = metadata["state_dict"]
    if state_dict_hash(text) != metadata.get("state_dict_hash"):
        raise BridgeError(f"{path}: its state dict does not match state_dict_hash")
    entries = {}
    for name, field in sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        begin, end = field["data_offsets"]
        if field["dtype"] not in SAFETENSORS_DTYPES:
            raise BridgeError(f"{path}: entry {name} has dtype {field['dtype']}")
        entries[name] = (field["dtype"], list(field["shape"]), data[begin:end])
    if data_hash(chunk for _, _, chunk in entries.values()) != metadata.get("data_hash"):
        raise BridgeError(f"{path}: its tensor bytes do not match data_hash")
    return metadata, json.loads(text), entries


def write_checkpoint(path, optimizer, state_dict, entries):
    """Writes a checkpoint: `state_dict` (JSON-ready, tensors already replaced by
    {"safetensors": name}), `entries` a list of (name, safetensors dtype, shape, bytes) in file order."""
    text = json.dumps(state_dict, sort_keys=True, separators=(",", ":"), allow_nan=True)
    header = {}
    offset = 0
    for name, dtype, shape, chunk in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(chunk)]}
        offset += len(chunk)
    header["__metadata__"] = {
        "format": FORMAT, "version": VERSION, "optimizer": optimizer, "state_dict": text,
        "state_dict_hash": state_dict_hash(text), "data_hash": data_hash(chunk for _, _, _, chunk in entries),
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-(8 + len(header_bytes)) % 8)
    temporary = f"{path}.{os.getpid()}.partial"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for _, _, _, chunk in entries:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


# MARK: Conversions (torch)

def torch_class(name):
    import torch.optim
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise BridgeError(f"torch.optim has no optimizer {name}")
    return cls


def constructor_defaults(cls):
    """The keyword arguments of `cls`'s constructor that have defaults."""
    values = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "params") or parameter.default is inspect.Parameter.empty:
            continue
        if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        values[name] = parameter.default
    return values


def entry_tensor(dtype, shape, chunk):
    import torch
    torch_dtype = getattr(torch, SAFETENSORS_DTYPES[dtype][0])
    if not chunk:
        return torch.zeros(shape, dtype=torch_dtype)
    return torch.frombuffer(bytearray(chunk), dtype=torch_dtype).reshape(shape).clone()


def to_torch(checkpoint, out):
    metadata, saved, entries = read_checkpoint(checkpoint)
    swift_type = metadata["optimizer"]
    if swift_type in NO_TORCH_COUNTERPART:
        raise BridgeError(f"{swift_type} has no torch.optim counterpart: its reference is {NO_TORCH_COUNTERPART[swift_type]}")
    if swift_type not in SWIFT_TO_TORCH:
        raise BridgeError(f"{checkpoint} holds the state of {swift_type}, which the bridge does not map to torch.optim")
    class_name = SWIFT_TO_TORCH[swift_type]
    import torch
    defaults = constructor_defaults(torch_class(class_name))

    def resolve(value):
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("safetensors"), str):
                return entry_tensor(*entries[value["safetensors"]])
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return value

    state = {int(key): resolve(value) for key, value in saved["state"].items()}
    groups = []
    for saved_group in saved["param_groups"]:
        group = {}
        for key, value in saved_group.items():
            value = resolve(value)
            # torch keeps tuple options as tuples (betas, etas, step_sizes, eps, ns_coefficients).
            if isinstance(defaults.get(key), tuple) and isinstance(value, list):
                value = tuple(value)
            group[key] = value
        for key, value in defaults.items():
            group.setdefault(key, value)
        group["params"] = list(saved_group["params"])
        groups.append(group)
    # LBFGS fills max_eval in when built (None becomes max_iter * 5 // 4); keep it as its groups hold it.
    for group in groups:
        if class_name == "LBFGS" and group.get("max_eval") is None:
            group["max_eval"] = group["max_iter"] * 5 // 4
    model = {name[len("model."):]: entry_tensor(*entry) for name, entry in entries.items() if name.startswith("model.")}
    torch.save({"format": BRIDGE_FORMAT, "torch_class": class_name, "swift_type": swift_type,
                "optimizer": {"state": state, "param_groups": groups}, "model": model}, out)


def safetensors_dtype(tensor):
    import torch
    names = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16"}
    if tensor.dtype not in names:
        raise BridgeError(f"a {tensor.dtype} tensor has no dtype in the checkpoint format (F32, F64, F16, BF16)")
    return names[tensor.dtype]


def tensor_bytes(tensor):
    import torch
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def from_torch(source, checkpoint, class_name=None, swift_type=None):
    import torch
    loaded = torch.load(source, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and "optimizer" in loaded:
        state_dict = loaded["optimizer"]
        model = loaded.get("model") or {}
        class_name = class_name or loaded.get("torch_class")
    elif isinstance(loaded, dict) and "state" in loaded and "param_groups" in loaded:
        state_dict, model = loaded, {}
    else:
        raise BridgeError(f"{source} holds neither a state dict nor a bridge dict with 'optimizer'")
    if class_name is None:
        raise BridgeError(f"{source} does not say which torch.optim class saved it: give --torch-class")
    torch_class(class_name)
    swift_type = swift_type or TORCH_TO_SWIFT.get(class_name)
    if swift_type is None:
        raise BridgeError(f"torch.optim.{class_name} has no counterpart in the library: give --swift-type")

    entries = []

    def plain(value, name):
        if isinstance(value, torch.Tensor):
            if value.is_sparse or value.layout != torch.strided:
                raise BridgeError(f"{name} is a {value.layout} tensor; checkpoints hold dense tensors")
            entries.append((name, safetensors_dtype(value), list(value.shape), tensor_bytes(value)))
            return {"safetensors": name}
        if isinstance(value, (list, tuple)):
            return [plain(item, f"{name}.{number}") for number, item in enumerate(value)]
        if isinstance(value, dict):
            return {str(key): plain(item, f"{name}.{key}") for key, item in value.items()}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise BridgeError(f"{name} is a {type(value).__name__}, which a checkpoint cannot hold")

    state = {}
    for key in sorted(state_dict["state"], key=int):
        state[str(key)] = {name: plain(value, f"state.{key}.{name}")
                           for name, value in sorted(state_dict["state"][key].items())}
    groups = []
    for group in state_dict["param_groups"]:
        converted = {}
        for name, value in group.items():
            if isinstance(value, torch.Tensor):
                # A tensor option (a tensor lr): its value.
                value = value.item()
            converted[name] = plain(value, f"param_groups.{name}")
        groups.append(converted)
    for name in sorted(model):
        tensor = model[name]
        if not isinstance(tensor, torch.Tensor):
            raise BridgeError(f"model entry {name} is not a tensor")
        entries.append((f"model.{name}", safetensors_dtype(tensor), list(tensor.shape), tensor_bytes(tensor)))
    write_checkpoint(checkpoint, swift_type, {"state": state, "param_groups": groups}, entries)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    to = commands.add_parser("to-torch", help="a checkpoint file -> a torch.save'd dict with a torch.optim state dict")
    to.add_argument("checkpoint")
    to.add_argument("out")
    back = commands.add_parser("from-torch", help="a torch.save'd state dict -> a checkpoint file")
    back.add_argument("source")
    back.add_argument("checkpoint")
    back.add_argument("--torch-class", help="the torch.optim class of a bare state dict (Adam, SGD, ...)")
    back.add_argument("--swift-type", help="the Swift type to write (default: the class's counterpart)")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "to-torch":
            to_torch(arguments.checkpoint, arguments.out)
        else:
            from_torch(arguments.source, arguments.checkpoint, arguments.torch_class, arguments.swift_type)
    except BridgeError as error:
        print(f"torch_bridge: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
