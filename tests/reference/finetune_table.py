#!/usr/bin/env python3
"""The README's fine-tuning table: Graft's CLI and the same runs in PyTorch on Fashion-MNIST.

150 training images per class (Debian `dataset-fashion-mnist`), a third held out per class
(Graft's stratified split, reproduced here with its SplitMix64), so 100 images per class train
and 500 images validate. Each run: head only, or the last 2, 5 or 8 blocks unfrozen after 5
head-only epochs, with or without augmentation; 20 epochs, batch 16, AdamW (head 1e-3, blocks
1e-4, weight decay 0.01), a 100-unit head with dropout 0.2, batch norm with its pretrained
statistics, the weights of the epoch with the lowest validation loss. PyTorch runs the same
recipe: the frozen prefix once per image (and per augmented view, as many views as Graft cached),
the suffix and head trained with every core, train and validation sets scored every epoch.

    /usr/bin/python3 tests/reference/finetune_table.py --pth .cache/weights/mobilenet_v2-b0353104.pth \\
        --graft target/release/graft [--runs 0,2,5,8] [--augment both|off|on] [--json out.json]

Prints one markdown row per run (accuracy, seconds per epoch: Graft and PyTorch).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import MEAN, STD, load_rgb, preprocess  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH, VAL_FRACTION = 16, 0.3333334
EPOCHS, HEAD_EPOCHS = 20, 5
MASK = (1 << 64) - 1


class SplitMix64:
    """Graft's seeded generator (src/train/rng.rs), bit for bit."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.next_u64() % (i + 1)
            items[i], items[j] = items[j], items[i]


def stratified_split(labels, classes, fraction, seed):
    """Graft's split (src/train/split.rs): per class, a seeded shuffle, the first share validates."""
    rng = SplitMix64(seed)
    train, val = [], []
    for c in range(classes):
        members = [i for i, label in enumerate(labels) if label == c]
        rng.shuffle(members)
        wanted = int(np.float32(len(members)) * np.float32(fraction) + np.float32(0.5))
        n_val = min(wanted, max(len(members) - 1, 0))
        val += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(val)


def list_images(folder):
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    paths, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(folder, name))):
            paths.append(os.path.join(folder, name, file))
            labels.append(label)
    return classes, paths, labels


def augmentation():
    """Graft's augmentation at strength 0.5 (src/augment.rs) in torchvision's terms."""
    return T.Compose([
        T.RandomResizedCrop(224, scale=(0.65, 1.0), ratio=(math.exp(-0.15), math.exp(0.15)), antialias=True),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


@torch.no_grad()
def frozen_inputs(prefix, tensors, pooled):
    out = []
    for start in range(0, len(tensors), 32):
        y = prefix(torch.cat(tensors[start:start + 32]))
        out.append(y.mean((2, 3)) if pooled else y)
    return torch.cat(out)


def score(head, suffix, x, y, pooled):
    with torch.no_grad():
        logits = []
        for start in range(0, len(x), 64):
            features = x[start:start + 64] if pooled else suffix(x[start:start + 64]).mean((2, 3))
            logits.append(head(features))
        logits = torch.cat(logits)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def pytorch_run(pth, paths, labels, classes, unfreeze, views, seed=0):
    torch.manual_seed(seed)
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(pth, map_location="cpu"))
    model.eval()
    boundary = len(model.features) - unfreeze
    prefix, suffix = model.features[:boundary], model.features[boundary:]
    pooled = unfreeze == 0
    started = time.time()
    plain = frozen_inputs(prefix, [preprocess(p) for p in paths], pooled)
    augment = augmentation()
    view_inputs = [
        frozen_inputs(prefix, [augment(load_rgb(p)).unsqueeze(0) for p in paths], pooled) for _ in range(views)
    ]
    prepare_seconds = time.time() - started
    y = torch.tensor(labels)
    train, val = stratified_split(labels, len(classes), VAL_FRACTION, seed)
    head = torch.nn.Sequential(torch.nn.Linear(1280, 100), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(100, len(classes)))
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    best, epoch_seconds = None, []
    for epoch in range(EPOCHS):
        started = time.time()
        if unfreeze and epoch == HEAD_EPOCHS:
            optimizer.add_param_group({"params": list(suffix.parameters()), "lr": 1e-4, "weight_decay": 0.01})
        learn_blocks = unfreeze and epoch >= HEAD_EPOCHS
        inputs = view_inputs[epoch % views] if views else plain
        head.train()
        order = torch.tensor(train)[torch.randperm(len(train), generator=generator)]
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            x = inputs[batch]
            if not pooled:
                with torch.set_grad_enabled(bool(learn_blocks)):
                    x = suffix(x).mean((2, 3))
            loss = F.cross_entropy(head(x), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        head.eval()
        score(head, suffix, plain[train], y[train], pooled)
        val_loss, val_accuracy = score(head, suffix, plain[val], y[val], pooled)
        epoch_seconds.append((epoch, time.time() - started))
        if best is None or val_loss < best[0]:
            best = (val_loss, val_accuracy, epoch + 1)
    timed = [s for e, s in epoch_seconds if not unfreeze or e >= HEAD_EPOCHS]
    return {"val_accuracy": best[1], "best_epoch": best[2], "seconds_per_epoch": sum(timed) / len(timed),
            "prepare_seconds": prepare_seconds}


def graft_run(graft, folder, unfreeze, augment):
    args = [graft, "train", folder, "--json", "--backend", "cpu", "--epochs", str(EPOCHS), "--batch", str(BATCH),
            "--val-fraction", str(VAL_FRACTION), "--unfreeze", str(unfreeze), "--head-epochs", str(HEAD_EPOCHS)]
    if augment:
        args.append("--augment")
    run = subprocess.run(args, capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    epochs, final = lines[:-1], lines[-1]
    timed = [e["seconds"] for e in epochs if not unfreeze or e["stage"] == "fine-tune"]
    return {"val_accuracy": final["val_accuracy"], "best_epoch": final["best_epoch"],
            "seconds_per_epoch": sum(timed) / len(timed), "prepare_seconds": final["embed_seconds"],
            "views": final["augmented_views"], "cache_mb": final["cache_bytes"] / 2**20}


def main():
    global EPOCHS, HEAD_EPOCHS
    parser = argparse.ArgumentParser()
    parser.add_argument("--pth", required=True)
    parser.add_argument("--graft", required=True)
    parser.add_argument("--runs", default="0,2,5,8")
    parser.add_argument("--augment", choices=["both", "off", "on"], default="both")
    parser.add_argument("--json")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--head-epochs", type=int, default=HEAD_EPOCHS)
    args = parser.parse_args()
    EPOCHS, HEAD_EPOCHS = args.epochs, args.head_epochs
    torch.set_num_threads(os.cpu_count())
    folder = tempfile.mkdtemp(prefix="graft-fm1500-")
    subprocess.run([sys.executable, os.path.join(HERE, "fashion_mnist_folder.py"), folder, "--per-class", "150"], check=True)
    classes, paths, labels = list_images(folder)
    settings = {"off": [False], "on": [True], "both": [False, True]}[args.augment]
    results = []
    print("| unfrozen blocks | augment | val. accuracy Graft | PyTorch | s/epoch Graft | PyTorch | ratio | views, cache |")
    print("|---|---|---|---|---|---|---|---|")
    for unfreeze in [int(r) for r in args.runs.split(",")]:
        for augment in settings:
            ours = graft_run(args.graft, folder, unfreeze, augment)
            theirs = pytorch_run(args.pth, paths, labels, classes, unfreeze, ours["views"])
            results.append({"unfreeze": unfreeze, "augment": augment, "graft": ours, "pytorch": theirs})
            ratio = ours["seconds_per_epoch"] / theirs["seconds_per_epoch"]
            print(f"| {unfreeze or 'head only'} | {'yes' if augment else 'no'} | {ours['val_accuracy']:.1%} | "
                  f"{theirs['val_accuracy']:.1%} | {ours['seconds_per_epoch']:.2f} | {theirs['seconds_per_epoch']:.2f} | "
                  f"{ratio:.2f}x | {ours['views']}, {ours['cache_mb']:.0f} MB |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
