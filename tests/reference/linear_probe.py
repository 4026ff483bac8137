#!/usr/bin/env python3
"""PyTorch reference for `graft train`: MobileNetV2 features (torchvision, the engine's
preprocessing) of an ImageFolder, then a linear probe (AdamW, full batch) on a stratified
15% validation split. Prints the validation accuracy.

    /usr/bin/python3 tests/reference/linear_probe.py DIR --pth .cache/weights/mobilenet_v2-b0353104.pth
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import preprocess  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--pth", required=True)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(args.pth, map_location="cpu"))
    model.eval()
    classes = sorted(d for d in os.listdir(args.dir) if os.path.isdir(os.path.join(args.dir, d)))
    features, labels = [], []
    with torch.no_grad():
        for label, name in enumerate(classes):
            for file in sorted(os.listdir(os.path.join(args.dir, name))):
                x = preprocess(os.path.join(args.dir, name, file))
                features.append(model.features(x).mean((2, 3))[0])
                labels.append(label)
    x = torch.stack(features)
    y = torch.tensor(labels)
    rng = np.random.default_rng(args.seed)
    val = []
    for c in range(len(classes)):
        members = np.flatnonzero(y.numpy() == c)
        rng.shuffle(members)
        val.extend(members[: int(round(len(members) * args.val_fraction))])
    val_mask = torch.zeros(len(y), dtype=torch.bool)
    val_mask[val] = True
    torch.manual_seed(args.seed)
    probe = torch.nn.Linear(x.shape[1], len(classes))
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(500):
        loss = F.cross_entropy(probe(x[~val_mask]), y[~val_mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (probe(x[val_mask]).argmax(1) == y[val_mask]).float().mean().item()
    print(f"images {len(y)}, validation {int(val_mask.sum())}, linear probe validation accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
