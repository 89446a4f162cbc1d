"""Writes digits.csv: the 1,797 8x8 handwritten digits that scikit-learn distributes
(sklearn.datasets.load_digits), one image a line, 64 pixel values (0 to 16, row by row) then the
label (0 to 9), after a header line. `optim train` reads it.

    python3 Benchmarks/data/digits/export_digits.py      (needs scikit-learn)
"""
import os

from sklearn.datasets import load_digits


def main():
    digits = load_digits()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv")
    with open(path, "w") as out:
        out.write(",".join([f"pixel{k}" for k in range(64)] + ["label"]) + "\n")
        for image, label in zip(digits.data, digits.target):
            out.write(",".join(str(int(v)) for v in image) + f",{int(label)}\n")
    print(f"wrote {len(digits.target)} images to {path}")


if __name__ == "__main__":
    main()
