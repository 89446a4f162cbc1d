"""The digits run of `optim train`, repeated in PyTorch: the same data, split, initial weights,
batch order and optimizer, so that the two loss curves can be read side by side.

It reproduces `optim train`'s seeded generator (SplitMix64), its shuffle (Fisher-Yates from
the last element down, drawing next() % (i + 1)) and its initialization (uniform in
+-1/sqrt(fan_in), drawn in float64 and rounded to float32, weights then bias, layer by layer),
trains the same 64-hidden-10 perceptron with torch.optim, runs `optim train --format json` with
the same arguments, and prints both mean training losses per epoch, their relative difference,
and both test accuracies. The forward and backward passes differ only in the order of float32
sums (torch's matrix products against the hand-written loops), so the curves agree to float32
rounding as long as training does not amplify those differences.

    python3 Benchmarks/peers/train_digits_torch.py --optimizer adam
    python3 Benchmarks/peers/train_digits_torch.py --optimizer sgd --lr 0.1 --option momentum=0.9

Needs torch and numpy (Benchmarks/peers/requirements.txt) and `swift build -c release`.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

MASK = (1 << 64) - 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def next_signed(self):
        """Uniform in [-1, 1): the top 53 bits as a signed number, times 2^-52."""
        value = self.next()
        signed = value - (1 << 64) if value >> 63 else value
        return float(signed >> 11) * 2.0 ** -52


def shuffle(items, generator):
    for i in range(len(items) - 1, 0, -1):
        j = generator.next() % (i + 1)
        items[i], items[j] = items[j], items[i]


def uniform(shape, fan_in, generator):
    bound = 1 / np.sqrt(fan_in)
    count = int(np.prod(shape))
    values = np.array([bound * generator.next_signed() for _ in range(count)], dtype=np.float64)
    return torch.tensor(values.astype(np.float32).reshape(shape))


def parse_options(items, lr):
    options = {}
    for item in items:
        name, _, text = item.partition("=")
        value = json.loads(text)
        options[name] = tuple(value) if isinstance(value, list) else value
    if lr is not None:
        options["lr"] = lr
    return options


TORCH_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
                    "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad, "nadam": torch.optim.NAdam,
                    "radam": torch.optim.RAdam, "adamax": torch.optim.Adamax, "adadelta": torch.optim.Adadelta}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="adam", choices=sorted(TORCH_OPTIMIZERS))
    parser.add_argument("--lr", type=float)
    parser.add_argument("--option", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.path.join(ROOT, "Benchmarks/data/digits/digits.csv"))
    parser.add_argument("--optim", default=os.path.join(ROOT, ".build/release/optim"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    table = np.loadtxt(args.data, delimiter=",", skiprows=1, dtype=np.int64)
    images = torch.tensor((table[:, :64] / 16).astype(np.float32))
    labels = torch.tensor(table[:, 64])
    generator = SplitMix64(args.seed)
    order = list(range(len(labels)))
    shuffle(order, generator)
    test_count = len(labels) // 5
    test, train = order[:test_count], order[test_count:]
    w1 = uniform((args.hidden, 64), 64, generator)
    b1 = uniform((args.hidden,), 64, generator)
    w2 = uniform((10, args.hidden), args.hidden, generator)
    b2 = uniform((10,), args.hidden, generator)
    parameters = [p.requires_grad_() for p in (w1, b1, w2, b2)]
    optimizer = TORCH_OPTIMIZERS[args.optimizer](parameters, **parse_options(args.option, args.lr))

    def scores(rows):
        return torch.relu(images[rows] @ w1.T + b1) @ w2.T + b2

    def accuracy(rows):
        with torch.no_grad():
            return (scores(rows).argmax(dim=1) == labels[rows]).double().mean().item()

    torch_losses = []
    shuffled = list(train)
    for _ in range(args.epochs):
        shuffle(shuffled, generator)
        total, batches = 0.0, 0
        for start in range(0, len(shuffled), args.batch_size):
            batch = shuffled[start:start + args.batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(scores(batch), labels[batch])
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        torch_losses.append(total / batches)
    torch_accuracy = accuracy(test)

    command = [args.optim, "train", "--optimizer", args.optimizer, "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--hidden", str(args.hidden), "--seed", str(args.seed),
               "--data", args.data, "--format", "json"]
    if args.lr is not None:
        command += ["--lr", repr(args.lr)]
    for item in args.option:
        command += ["--option", item]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    epochs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    ours = [epoch["loss"] for epoch in epochs]
    our_accuracy = epochs[-1]["test_accuracy"] if epochs else float("nan")

    settings = " ".join(sys.argv[1:]) or "--optimizer adam"
    print(f"# optim train against PyTorch {torch.__version__}: {settings}")
    print("| epoch | optim loss | torch loss | relative difference |")
    print("|---|---|---|---|")
    for number, (mine, theirs) in enumerate(zip(ours, torch_losses), start=1):
        print(f"| {number} | {mine:.7f} | {theirs:.7f} | {abs(mine - theirs) / abs(theirs):.1e} |")
    worst = max(abs(m - t) / abs(t) for m, t in zip(ours, torch_losses))
    print(f"\nlargest relative difference of the epoch losses: {worst:.1e}")
    print(f"test accuracy: optim {100 * our_accuracy:.1f}%, torch {100 * torch_accuracy:.1f}%")


if __name__ == "__main__":
    main()
