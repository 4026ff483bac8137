#!/usr/bin/env python3
"""Writes the small image-folder datasets (OUT/<class>/<index>.png) that measure which backbone
transfers best (README, "Which backbone fits your data?") and when transfer does not help.

    /usr/bin/python3 tests/reference/transfer_datasets.py photos OUT [--per-class 60]
    /usr/bin/python3 tests/reference/transfer_datasets.py glyphs OUT [--per-class 60]
    /usr/bin/python3 tests/reference/transfer_datasets.py pattern OUT [--per-class 60]
    /usr/bin/python3 tests/reference/transfer_datasets.py shift OUT [--per-class 100]

- photos: real photos of objects (Debian's python3-skimage and opencv-doc), one class per
  photo, each sample a random crop (40-80% of the side), flip and brightness change of it.
  Close to ImageNet.
- glyphs: the letters A-J rendered in the DejaVu fonts, at random sizes, angles and
  positions, black on white with pixel noise. Far from ImageNet's photos.
- pattern: 32 x 32 grey noise plus or minus one fixed random +-1 pattern of amplitude 12
  levels: the classes differ only in the sign of an invisible pixel pattern. Pretrained
  features pool texture statistics over the image, which are the same for both signs, so
  transfer cannot help; a head on the raw pixels sees the sign at once (negative transfer).
- shift (domain adaptation, as MNIST-M is made from MNIST): OUT/source/<class>/ holds
  Fashion-MNIST training images; OUT/target/ the next training images of each class blended
  with random crops of the colour photos (|crop - image| per channel), unlabelled; and
  OUT/target_test/<class>/ test images blended the same way, labelled, never trained on.
Deterministic: every sample comes from a seeded generator.
"""
import argparse
import glob
import os
import random

import sys

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PHOTOS = [
    "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
    "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
    "/usr/lib/python3/dist-packages/skimage/data/astronaut.png",
    "/usr/lib/python3/dist-packages/skimage/data/rocket.jpg",
    "/usr/share/doc/opencv-doc/examples/data/baboon.jpg",
    "/usr/share/doc/opencv-doc/examples/data/orange.jpg",
    "/usr/share/doc/opencv-doc/examples/data/fruits.jpg",
    "/usr/share/doc/opencv-doc/examples/data/building.jpg",
]


def photos(out, per_class, rng):
    for path in PHOTOS:
        image = Image.open(path).convert("RGB")
        name = os.path.splitext(os.path.basename(path))[0]
        os.makedirs(os.path.join(out, name), exist_ok=True)
        w, h = image.size
        for i in range(per_class):
            side = int(min(w, h) * rng.uniform(0.4, 0.8))
            left, top = rng.randint(0, w - side), rng.randint(0, h - side)
            crop = image.crop((left, top, left + side, top + side)).resize((128, 128), Image.BILINEAR)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
            crop.save(os.path.join(out, name, f"{i}.png"))


def glyphs(out, per_class, rng):
    fonts = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/DejaVu*.ttf"))
    noise = np.random.default_rng(rng.randint(0, 1 << 30))
    for letter in "ABCDEFGHIJ":
        os.makedirs(os.path.join(out, letter), exist_ok=True)
        for i in range(per_class):
            font = ImageFont.truetype(rng.choice(fonts), rng.randint(28, 48))
            canvas = Image.new("L", (64, 64), 255)
            ImageDraw.Draw(canvas).text((rng.randint(4, 20), rng.randint(0, 12)), letter, font=font, fill=0)
            canvas = canvas.rotate(rng.uniform(-25, 25), fillcolor=255)
            pixels = np.asarray(canvas, dtype=np.float32) + noise.normal(0, 20, (64, 64))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(os.path.join(out, letter, f"{i}.png"))


def shift(out, per_class, rng):
    import fashion_mnist_folder as fm

    photos = [np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in PHOTOS]

    def blend(pixels):
        grey = np.frombuffer(pixels, dtype=np.uint8).astype(np.int16).reshape(28, 28)
        photo = photos[rng.randrange(len(photos))]
        top, left = rng.randint(0, photo.shape[0] - 28), rng.randint(0, photo.shape[1] - 28)
        patch = photo[top:top + 28, left:left + 28]
        return Image.fromarray(np.abs(patch - grey[:, :, None]).astype(np.uint8))

    def images(split):
        prefix = "train" if split == "train" else "t10k"
        data, _ = fm.read_idx(os.path.join(fm.DATA, f"{prefix}-images-idx3-ubyte.gz"))
        labels, _ = fm.read_idx(os.path.join(fm.DATA, f"{prefix}-labels-idx1-ubyte.gz"))
        return list(zip(data, labels))

    taken = {c: 0 for c in range(10)}
    for i, (pixels, label) in enumerate(images("train")):
        n = taken[label]
        if n < per_class:
            folder = os.path.join(out, "source", fm.NAMES[label])
            os.makedirs(folder, exist_ok=True)
            grey = Image.frombytes("L", (28, 28), bytes(pixels)).convert("RGB")
            grey.save(os.path.join(folder, f"{i}.png"))
        elif n < 2 * per_class:
            os.makedirs(os.path.join(out, "target"), exist_ok=True)
            blend(pixels).save(os.path.join(out, "target", f"{i}.png"))
        taken[label] = n + 1
    tested = {c: 0 for c in range(10)}
    for i, (pixels, label) in enumerate(images("test")):
        if tested[label] < per_class:
            folder = os.path.join(out, "target_test", fm.NAMES[label])
            os.makedirs(folder, exist_ok=True)
            blend(pixels).save(os.path.join(folder, f"{i}.png"))
            tested[label] += 1


def pattern(out, per_class, rng):
    noise = np.random.default_rng(rng.randint(0, 1 << 30))
    sign_pattern = np.where(np.random.default_rng(7).random((32, 32)) < 0.5, -1.0, 1.0)
    for name, sign in (("plus", 1.0), ("minus", -1.0)):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for i in range(per_class):
            pixels = 128 + noise.normal(0, 40, (32, 32)) + 12 * sign * sign_pattern
            grey = np.clip(pixels, 0, 255).astype(np.uint8)
            Image.fromarray(np.stack([grey] * 3, axis=-1)).save(os.path.join(out, name, f"{i}.png"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["photos", "glyphs", "pattern", "shift"])
    parser.add_argument("out")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kinds = {"photos": photos, "glyphs": glyphs, "pattern": pattern, "shift": shift}
    kinds[args.kind](args.out, args.per_class, random.Random(args.seed))
