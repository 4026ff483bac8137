#!/usr/bin/env python3
"""The README's "Which backbone fits your data?" table: for each dataset folder, every
backbone's LogME (`graft rank`) against the validation accuracy a head on its features reaches
(`graft train`, same split and seed for both), and the pixel baseline.

    cargo build --release --bin graft
    /usr/bin/python3 tests/reference/ranking_table.py NAME=DIR [NAME=DIR ...] [--epochs 50]

Datasets: tests/reference/transfer_datasets.py and fashion_mnist_folder.py write them.
"""
import argparse
import json
import os
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GRAFT = os.path.join(ROOT, "target", "release", "graft")


def run(args):
    out = subprocess.run([GRAFT, *args, "--backend", "cpu"], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", help="NAME=DIR")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--val-fraction", type=float, default=0.3)
    args = parser.parse_args()
    print("| dataset | images | backbone | LogME | val accuracy | pixel baseline | LogME picks the better one |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.datasets:
        name, folder = spec.split("=", 1)
        ranked = run(["rank", folder, "--json"])[0]
        accuracy, baseline = {}, None
        for entry in ranked:
            final = run(["train", folder, "--backbone", entry["backbone"], "--epochs", str(args.epochs),
                         "--val-fraction", str(args.val_fraction), "--json"])[-1]
            accuracy[entry["backbone"]] = final["val_accuracy"]
            baseline = final["baseline_accuracy"]
        best_by_logme = ranked[0]["backbone"]
        held = accuracy[best_by_logme] >= max(accuracy.values())
        for entry in ranked:
            b = entry["backbone"]
            print(f"| {name} | {entry['images']} | {b} | {entry['logme']:.3f} | {100 * accuracy[b]:.1f}% "
                  f"| {100 * baseline:.1f}% | {'yes' if held else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
