#!/usr/bin/env python3
"""Writes the small image-folder datasets (OUT/<class>/<index>.png) that measure which backbone
transfers best (README, "Which backbone fits your data?") and when transfer does not help.

    /usr/bin/python3 tests/reference/transfer_datasets.py photos OUT [--per-class 60]
    /usr/bin/python3 tests/reference/transfer_datasets.py glyphs OUT [--per-class 60]
    /usr/bin/python3 tests/reference/transfer_datasets.py pattern OUT [--per-class 60]

- photos: real photos of objects (Debian's python3-skimage and opencv-doc), one class per
  photo, each sample a random crop (40-80% of the side), flip and brightness change of it.
  Close to ImageNet.
- glyphs: the letters A-J rendered in the DejaVu fonts, at random sizes, angles and
  positions, black on white with pixel noise. Far from ImageNet's photos.
- pattern: 32 x 32 grey noise plus or minus one fixed random +-1 pattern of amplitude 12
  levels: the classes differ only in the sign of an invisible pixel pattern. Pretrained
  features pool texture statistics over the image, which are the same for both signs, so
  transfer cannot help; a head on the raw pixels sees the sign at once (negative transfer).
Deterministic: every sample comes from a seeded generator.
"""
import argparse
import glob
import os
import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

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
    parser.add_argument("kind", choices=["photos", "glyphs", "pattern"])
    parser.add_argument("out")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"photos": photos, "glyphs": glyphs, "pattern": pattern}[args.kind](args.out, args.per_class, random.Random(args.seed))
