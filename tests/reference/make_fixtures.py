#!/usr/bin/env python3
"""Writes the small reference fixtures the Rust tests compare against.

Run with Debian's python3 (python3-torch, python3-torchvision, python3-pil):

    /usr/bin/python3 tests/reference/make_fixtures.py --pth .cache/weights/mobilenet_v2-b0353104.pth

Outputs (committed, all small):
  tests/fixtures/tiny_legacy.pth        a legacy-format checkpoint exercising strides, offsets, dtypes
  tests/fixtures/tiny_legacy.json       the values the Rust reader must find in it
  tests/fixtures/mobilenet_v2_reference.json   PyTorch logits for real photos
  tests/fixtures/head_training_reference.json  AdamW steps of an MLP head (losses, weights)
  tests/fixtures/finetune_reference.json       fine-tuning: one inverted-residual block's
                                               gradients, and AdamW steps of a head plus the
                                               last two blocks (losses)

Preprocessing here is the engine's documented algorithm (ARCHITECTURE.md): decode, apply EXIF
orientation, composite alpha on white, scale to [0,1], resize the shorter side to 256 with
antialiased bilinear filtering (float, like PIL's BILINEAR but without 8-bit rounding), centre
crop 224, normalise with ImageNet mean/std.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# Real photos from Debian packages (python3-skimage, opencv-doc); not committed. PNGs decode
# to identical pixels everywhere, so they test the model to 1e-3; JPEG decoders differ by a
# level here and there (libjpeg-turbo here, zune-jpeg in the engine), so the JPEGs test the
# whole path end to end with a looser bound.
PHOTOS = [
    "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
    "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
    "/usr/lib/python3/dist-packages/skimage/data/astronaut.png",
    "/usr/share/doc/opencv-doc/examples/data/chicky_512.png",
    "/usr/share/doc/opencv-doc/examples/data/baboon.jpg",
    "/usr/share/doc/opencv-doc/examples/data/orange.jpg",
]


def tiny_legacy():
    """A checkpoint with a plain tensor, a transposed view, an offset view, ints and a scalar."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8.0 - 1.0
    sd = {
        "plain": base.clone(),
        "transposed": base.t(),  # non-contiguous: strides (1, 6)
        "offset_view": base[1:3, 2:5],  # shares storage with an offset
        "counts": torch.tensor([3, -7, 1 << 40], dtype=torch.int64),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "halves": torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16),
    }
    path = os.path.join(FIXTURES, "tiny_legacy.pth")
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    expected = {
        name: {
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "values": t.contiguous().flatten().tolist(),
        }
        for name, t in sd.items()
    }
    with open(os.path.join(FIXTURES, "tiny_legacy.json"), "w") as f:
        json.dump(expected, f, indent=1)


def head_training():
    """Five full-batch AdamW steps of Linear-ReLU-Linear on fixed data, dropout off."""
    torch.manual_seed(0)
    n, d, h, c = 12, 8, 5, 3
    x = torch.randn(n, d)
    y = torch.tensor([i % c for i in range(n)])
    hidden, output = torch.nn.Linear(d, h), torch.nn.Linear(h, c)
    params = {"hidden": hidden, "output": output}

    def weights():
        return {
            f"{name}.{p}": getattr(layer, p).detach().tolist()
            for name, layer in params.items()
            for p in ("weight", "bias")
        }

    initial = weights()
    opt = torch.optim.AdamW(
        list(hidden.parameters()) + list(output.parameters()), lr=1e-2, weight_decay=0.01
    )
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(output(torch.relu(hidden(x))), y)
        losses.append(float(loss))
        opt.zero_grad()
        loss.backward()
        opt.step()
    ref = {
        "lr": 1e-2,
        "weight_decay": 0.01,
        "x": x.tolist(),
        "y": y.tolist(),
        "initial": initial,
        "losses": losses,
        "final": weights(),
    }
    with open(os.path.join(FIXTURES, "head_training_reference.json"), "w") as f:
        json.dump(ref, f)


def wave(n, a, b, scale=1.0):
    """`scale * sin(a * j + b)` for j < n, in float64 then float32: the deterministic fill the
    Rust test computes the same way (tests/finetune_parity.rs), so no weights are stored."""
    return (scale * np.sin(a * np.arange(n, dtype=np.float64) + b)).astype(np.float32)


def deterministic_mobilenet():
    """MobileNetV2 1.0 (no classifier used) with every float tensor filled by `wave`, tensor t in
    name order: conv weights / sqrt(fan_in), BN scale 1 + 0.1 w, shift and mean 0.1 w, variance
    1 + 0.25 (w + 1). Eval mode: batch norm uses its running statistics."""
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    return model, fill_deterministic(model, "classifier")


def fill_deterministic(model, classifier):
    """Fills every float tensor of `model` but the `classifier`'s by `wave`, tensor t in name
    order (see deterministic_mobilenet); returns the names."""
    sd = model.state_dict()
    names = sorted(k for k in sd if not k.endswith("num_batches_tracked") and not k.startswith(classifier))
    for t, name in enumerate(names):
        tensor = sd[name]
        w = wave(tensor.numel(), 1.7, 0.3 * t + 0.1)
        if name.endswith("running_var"):
            v = 1.0 + 0.25 * (w + 1.0)
        elif name.endswith("running_mean") or (name.endswith(".bias")):
            v = 0.1 * w
        elif tensor.dim() == 1:
            v = 1.0 + 0.1 * w
        else:
            v = w / np.sqrt(tensor[0].numel())
        tensor.copy_(torch.from_numpy(v.reshape(tensor.shape)))
    return names


def summary(tensor):
    """What the Rust test compares of a gradient: its sum, sum of squares and first values."""
    flat = tensor.detach().double().flatten()
    return {"sum": float(flat.sum()), "sq": float((flat * flat).sum()), "head": flat[:4].tolist()}


def finetune():
    model, names = deterministic_mobilenet()
    for p in model.parameters():
        p.requires_grad_(True)
    # One block (features.3: 24 -> 144 -> 24, stride 1, residual) on a fixed input.
    block = model.features[3]
    x = torch.from_numpy(wave(2 * 24 * 8 * 8, 0.05, 1.0).reshape(2, 24, 8, 8)).requires_grad_(True)
    r = torch.from_numpy(wave(2 * 24 * 8 * 8, 0.11, 0.5))
    loss = (block(x).flatten() * r).sum()
    loss.backward()
    grads = {f"features.3.{n}": summary(p.grad) for n, p in block.named_parameters()}
    block_ref = {"index": 3, "input_shape": [2, 24, 8, 8], "loss": float(loss), "input": summary(x.grad), "grads": grads}
    # Three AdamW steps of a linear head plus the last two blocks (17, 18) on a 64x64 batch
    # (2x2 at the boundary, so every depthwise tap is used).
    model.zero_grad()
    images = torch.from_numpy(wave(2 * 3 * 64 * 64, 0.05, 0.0).reshape(2, 3, 64, 64))
    labels = torch.tensor([0, 2])
    head = torch.nn.Linear(1280, 3)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(wave(3 * 1280, 1.3, 0.2, 1.0 / np.sqrt(1280)).reshape(3, 1280)))
        head.bias.copy_(torch.from_numpy(wave(3, 0.7, 0.0, 0.1)))
        boundary = model.features[:17](images)
    suffix = model.features[17:]
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": 1e-3}, {"params": suffix.parameters(), "lr": 1e-4}],
        weight_decay=0.01,
    )
    losses, first_grads = [], {}
    for step in range(3):
        logits = head(suffix(boundary).mean((2, 3)))
        step_loss = F.cross_entropy(logits, labels)
        losses.append(float(step_loss))
        optimizer.zero_grad()
        step_loss.backward()
        if step == 0:
            first_grads = {
                name: summary(p.grad)
                for name, p in model.named_parameters()
                if name.startswith(("features.17.", "features.18."))
            }
        optimizer.step()
    steps = {"boundary": 17, "image_shape": [2, 3, 64, 64], "labels": labels.tolist(), "lr_head": 1e-3,
             "lr_backbone": 1e-4, "weight_decay": 0.01, "losses": losses, "first_grads": first_grads}
    steps["batch_norm_train"] = batch_norm_train_steps()
    with open(os.path.join(FIXTURES, "finetune_reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "names": names, "block": block_ref, "steps": steps}, f)


# Training-mode batch norm starts from its own boundary: through 17 blocks of `wave` weights,
# the images of `finetune` come out nearly alike, so batch statistics would normalise float32
# rounding (block 17's gradients then differ from float64 by 70-100% in PyTorch itself). A
# `wave` boundary of 4 distinct samples keeps every quantity determined: float32 and float64
# agree to 1e-7 on the losses and 2e-5 on the gradients.
BN_TRAIN_BOUNDARY = [4, 160, 4, 4]
BN_TRAIN_LABELS = [0, 1, 2, 0]


def batch_norm_train_steps(_boundary=None, _labels=None):
    """Three AdamW steps of the head and blocks 17-18 with their batch norm in training mode
    (batch statistics in the forward pass, running statistics updated with momentum 0.1 and the
    unbiased variance), from `BN_TRAIN_BOUNDARY` filled by `wave`: the losses, the first step's
    gradients, and the running statistics after the first forward pass."""
    model, _ = deterministic_mobilenet()
    boundary = torch.from_numpy(wave(int(np.prod(BN_TRAIN_BOUNDARY)), 1.3, 0.0).reshape(BN_TRAIN_BOUNDARY))
    labels = torch.tensor(BN_TRAIN_LABELS)
    head = torch.nn.Linear(1280, 3)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(wave(3 * 1280, 1.3, 0.2, 1.0 / np.sqrt(1280)).reshape(3, 1280)))
        head.bias.copy_(torch.from_numpy(wave(3, 0.7, 0.0, 0.1)))
    suffix = model.features[17:].train()
    optimizer = torch.optim.AdamW(
        [{"params": head.parameters(), "lr": 1e-3}, {"params": suffix.parameters(), "lr": 1e-4}],
        weight_decay=0.01,
    )
    losses, running, first_grads = [], {}, {}
    for step in range(3):
        loss = F.cross_entropy(head(suffix(boundary).mean((2, 3))), labels)
        losses.append(float(loss))
        if step == 0:
            running = {
                name: summary(buffer)
                for name, buffer in model.named_buffers()
                if name.startswith(("features.17.", "features.18.")) and "running" in name
            }
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            first_grads = {
                name: summary(p.grad)
                for name, p in model.named_parameters()
                if name.startswith(("features.17.", "features.18."))
            }
        optimizer.step()
    # `running`: after the first forward pass, before any weight moved.
    return {"boundary_shape": BN_TRAIN_BOUNDARY, "labels": BN_TRAIN_LABELS, "losses": losses,
            "first_grads": first_grads, "running": running}


def load_rgb(path):
    img = ImageOps.exif_transpose(Image.open(path))
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return img.convert("RGB")


def preprocess(path, resize=256, crop=224):
    img = load_rgb(path)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()[None] / 255.0
    h, w = x.shape[2], x.shape[3]
    if w <= h:
        size = (int(resize * h / w), resize)
    else:
        size = (resize, int(resize * w / h))
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    top = int(round((size[0] - crop) / 2.0))
    left = int(round((size[1] - crop) / 2.0))
    x = x[:, :, top : top + crop, left : left + crop]
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def photo_record(path, x, logits):
    """What the parity tests compare of one photo: its input tensor's mean and corner, and the
    logits with their top 5."""
    top5 = torch.topk(logits, 5).indices.tolist()
    return {
        "file": path,
        "input_mean": float(x.mean()),
        "input_corner": [float(v) for v in x[0, :, 0, 0]],
        "top5": top5,
        "top1_prob": float(torch.softmax(logits, 0)[top5[0]]),
        "logits": [round(float(v), 6) for v in logits],
    }


def reference_logits(pth):
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(pth, map_location="cpu"))
    model.eval()
    out = []
    for path in PHOTOS:
        x = preprocess(path)
        with torch.no_grad():
            logits = model(x)[0]
        out.append(photo_record(path, x, logits))
        print(os.path.basename(path), out[-1]["top5"], out[-1]["top1_prob"])
    with open(os.path.join(FIXTURES, "mobilenet_v2_reference.json"), "w") as f:
        json.dump({"model": "mobilenet_v2", "torch": torch.__version__, "images": out}, f)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pth", help="MobileNetV2 legacy .pth (from `cargo xtask setup`)")
    args = parser.parse_args()
    os.makedirs(FIXTURES, exist_ok=True)
    tiny_legacy()
    head_training()
    finetune()
    if args.pth:
        reference_logits(args.pth)
