#!/usr/bin/env python3
"""The PyTorch side of `cargo xtask bench`: MobileNetV2 features from the very safetensors file
the app ships, timed on the CPU, and exported to ONNX for onnxruntime-web.

Run with Debian's python3 (python3-torch, python3-torchvision, python3-numpy):

    /usr/bin/python3 tests/bench/torch_reference.py export-onnx --weights W.safetensors --out M.onnx
    /usr/bin/python3 tests/bench/torch_reference.py time --weights W.safetensors \
        --inputs inputs.f32 --threads 1 --out torch.json --features torch_features.f32

`features` is torchvision's `mobilenet_v2().features` followed by the spatial mean, the same
`(B, 3, 224, 224) -> (B, 1280)` map as Graft's FeatureExtractor.
"""
import argparse
import json
import os
import resource
import time

import numpy as np
import torch
import torchvision

SIZE = 224
DTYPES = {"F32": np.float32, "I64": np.int64}


def load_safetensors(path):
    """A safetensors file as a state dict (the format: u64 header length, JSON header, data)."""
    with open(path, "rb") as f:
        data = f.read()
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    state = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[base + start : base + end], dtype=DTYPES[info["dtype"]])
        state[name] = torch.from_numpy(array.copy()).reshape(info["shape"])
    return state


class Features(torch.nn.Module):
    """MobileNetV2's backbone and the spatial mean: pooled features (B, 1280)."""

    def __init__(self, weights):
        super().__init__()
        model = torchvision.models.mobilenet_v2()
        model.load_state_dict(load_safetensors(weights))
        self.features = model.features.eval()

    def forward(self, x):
        return self.features(x).mean((2, 3))


def export_onnx(args):
    model = Features(args.weights).eval()
    torch.onnx.export(
        model,
        torch.zeros(1, 3, SIZE, SIZE),
        args.out,
        input_names=["input"],
        output_names=["features"],
        dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
        opset_version=13,
    )


def summary(per_image_ms):
    ordered = sorted(per_image_ms)
    at = lambda q: ordered[round((len(ordered) - 1) * q)]
    return {"median_ms": at(0.5), "p90_ms": at(0.9), "runs": len(ordered)}


def time_batches(model, images, batch, rounds):
    batches = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)]
    model(batches[0])
    times = []
    for _ in range(rounds):
        for b in batches:
            start = time.perf_counter()
            model(b)
            times.append((time.perf_counter() - start) * 1e3 / batch)
    return summary(times)


def rss_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def time_cpu(args):
    torch.set_num_threads(args.threads)
    model = Features(args.weights).eval()
    data = np.fromfile(args.inputs, dtype="<f4").reshape(-1, 3, SIZE, SIZE)
    images = torch.from_numpy(data.copy())
    with torch.no_grad():
        rss_before = rss_bytes("VmRSS")
        features = torch.cat([model(images[i : i + 1]) for i in range(len(images))])
        peak_growth = rss_bytes("VmHWM") - rss_before
        features.numpy().astype("<f4").tofile(args.features)
        report = {
            "engine": "pytorch",
            "version": torch.__version__,
            "threads": args.threads,
            "images": len(images),
            "batch1": time_batches(model, images, 1, rounds=1),
            "batch8": time_batches(model, images, 8, rounds=3),
            "peak_rss_growth_bytes": peak_growth,
        }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export-onnx")
    export.add_argument("--weights", required=True)
    export.add_argument("--out", required=True)
    timing = sub.add_parser("time")
    timing.add_argument("--weights", required=True)
    timing.add_argument("--inputs", required=True)
    timing.add_argument("--threads", type=int, default=1)
    timing.add_argument("--out", required=True)
    timing.add_argument("--features", required=True)
    args = parser.parse_args()
    {"export-onnx": export_onnx, "time": time_cpu}[args.command](args)


if __name__ == "__main__":
    main()
