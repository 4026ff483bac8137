#!/usr/bin/env python3
"""Writes Fashion-MNIST images (Debian `dataset-fashion-mnist`) as an ImageFolder:
OUT/<class name>/<index>.png, the first PER_CLASS images of each class.

    python3 tests/reference/fashion_mnist_folder.py OUT --per-class 100 [--split train|test] [--classes 10]
"""
import argparse
import gzip
import os
import struct

from PIL import Image

DATA = "/usr/share/datasets/fashion-mnist"
NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return [data[16 + i * rows * cols : 16 + (i + 1) * rows * cols] for i in range(count)], (rows, cols)
    return list(data[8 : 8 + count]), None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--split", choices=["train", "test"], default="train")
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    prefix = "train" if args.split == "train" else "t10k"
    images, (rows, cols) = read_idx(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz"))
    labels, _ = read_idx(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz"))
    written = {c: 0 for c in range(args.classes)}
    for i, (pixels, label) in enumerate(zip(images, labels)):
        if label >= args.classes or written[label] >= args.per_class:
            continue
        folder = os.path.join(args.out, NAMES[label])
        os.makedirs(folder, exist_ok=True)
        Image.frombytes("L", (cols, rows), pixels).save(os.path.join(folder, f"{i:05d}.png"))
        written[label] += 1
        if all(n >= args.per_class for n in written.values()):
            break
    print(f"wrote {sum(written.values())} images to {args.out}")


if __name__ == "__main__":
    main()
