#!/usr/bin/env python3
"""The README's domain adaptation table: accuracy on held-out labelled target images of
source-only training against DANN, head only and with unfrozen blocks, over seeds, and which
weights to keep (the final ones, or those with the best source validation loss).

    /usr/bin/python3 tests/reference/transfer_datasets.py shift /tmp/shift --per-class 100
    cargo build --release --bin graft
    /usr/bin/python3 tests/reference/dann_table.py /tmp/shift [--seeds 0 1 2] [--unfreeze 0 2] [--epochs 50]
"""
import argparse
import json
import os
import statistics
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GRAFT = os.path.join(ROOT, "target", "release", "graft")


def target_accuracy(data, seed, unfreeze, adapt, keep, epochs, weight=1.0):
    args = [GRAFT, "train", os.path.join(data, "source"), "--json", "--backend", "cpu", "--seed", str(seed),
            "--epochs", str(epochs), "--target-test", os.path.join(data, "target_test"), "--keep", keep]
    if unfreeze:
        args += ["--unfreeze", str(unfreeze), "--head-epochs", "5"]
    if adapt:
        args += ["--target", os.path.join(data, "target"), "--adapt", "dann", "--adapt-weight", str(weight)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.splitlines()
    final = json.loads(out[-1])
    domain = [json.loads(line).get("domain_accuracy") for line in out[:-1]]
    return final["target_accuracy"], final["val_accuracy"], domain[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--unfreeze", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--no-keep-best", action="store_true", help="skip DANN with the best validation loss's weights")
    parser.add_argument("--no-source-only", action="store_true", help="skip training without adaptation")
    parser.add_argument("--adapt-weight", type=float, default=1.0)
    args = parser.parse_args()
    print("| unfrozen | training | kept weights | target accuracy (mean ± sd) | per seed | source val | last domain acc |")
    print("|---|---|---|---|---|---|---|")
    for unfreeze in args.unfreeze:
        modes = [(False, "best"), (True, "final")] + ([] if args.no_keep_best else [(True, "best")])
        modes = [m for m in modes if m[0] or not args.no_source_only]
        for adapt, keep in modes:
            runs = [target_accuracy(args.data, s, unfreeze, adapt, keep, args.epochs, args.adapt_weight)
                    for s in args.seeds]
            targets = [100 * r[0] for r in runs]
            spread = statistics.stdev(targets) if len(targets) > 1 else 0.0
            domain = runs[-1][2]
            method = f"DANN (strength {args.adapt_weight:g})" if adapt else "source only"
            print(f"| {unfreeze} | {method} | {keep} | "
                  f"{statistics.mean(targets):.1f}% ± {spread:.1f} | {', '.join(f'{t:.1f}' for t in targets)} | "
                  f"{statistics.mean(100 * r[1] for r in runs):.1f}% | "
                  f"{'-' if domain is None else f'{100 * domain:.0f}%'} |", flush=True)


if __name__ == "__main__":
    main()
