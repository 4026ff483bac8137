#!/usr/bin/env python3
"""Writes a Y4M clip of real images for Chromium's fake webcam
(`--use-file-for-fake-video-capture=clip.y4m`): each image of an ImageFolder class,
resized to 320x240, held for a few frames, at 10 fps.

    python3 tests/reference/make_y4m.py FOLDER OUT.y4m [--hold 3]
"""
import argparse
import os

import numpy as np
from PIL import Image

W, H = 320, 240


def to_i420(img):
    rgb = np.asarray(img.convert("RGB").resize((W, H), Image.BILINEAR), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) * 0.564 + 128
    v = (r - y) * 0.713 + 128
    sub = lambda c: c.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(p, 0, 255).astype(np.uint8).tobytes() for p in planes)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("out")
    parser.add_argument("--hold", type=int, default=3)
    args = parser.parse_args()
    files = sorted(os.listdir(args.folder))
    with open(args.out, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F10:1 Ip A1:1 C420jpeg\n".encode())
        for name in files:
            frame = to_i420(Image.open(os.path.join(args.folder, name)))
            for _ in range(args.hold):
                f.write(b"FRAME\n" + frame)
    print(f"wrote {len(files) * args.hold} frames to {args.out}")


if __name__ == "__main__":
    main()
