#!/usr/bin/env python3
"""Writes tests/fixtures/saved/: one file of each shape Graft has saved a trained model in, as
the code of that time wrote it, so that tests/backbone_exec.rs can check that today's readers
still take every one (issue 37). Plain Python (json, struct, zipfile): no dependency.

| file | written by | shape |
|---|---|---|
| head-bare-hidden.safetensors | `graft train --save` before 540a91a; a project's saved head (IndexedDB, .graft) to this day | hidden.*, output.*; no metadata |
| finetuned-no-stats.header | `graft train --save --unfreeze 1` at d2eacba..236d96a | head and features.18's parameters, no batch-norm statistics |
| model-v1-finetuned.header | `graft train --save --unfreeze 1` at 540a91a (model file v1) | head, features.18 with statistics, graft.* metadata, a report without `kept_final` |
| project-v1.graft | the page's export at a50359f (.graft v1) | settings without adapt/keep, no check or target bins, history without domain accuracy |

`.header` files are the safetensors header alone (8-byte length and JSON): their blocks' data
is megabytes, so the test appends zeros for it. The small files carry their values (a fixed
sequence) in full.

    python3 tests/reference/make_saved_files.py
"""

import io
import json
import os
import struct
import zipfile

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "saved")
# The sha256 the tests' key gives the random backbone (tests/backbone_exec.rs `key("aaaa")`).
BACKBONE_SHA = "aaaa"
FEATURES = 1280


def values(count, seed):
    """A fixed sequence in (-0.05, 0.05): an LCG, so the file is the same on every machine."""
    state, out = seed, []
    for _ in range(count):
        state = (state * 1103515245 + 12345) % (1 << 31)
        out.append((state / (1 << 31) - 0.5) / 10)
    return out


def safetensors(tensors, metadata=None, header_only=False):
    """tensors: [(name, shape, floats or None for zeros)], in name order; `header_only` writes
    the header alone (the test appends the zeros its offsets cover)."""
    header, data, offset = {}, bytearray(), 0
    for name, shape, floats in sorted(tensors, key=lambda t: t[0]):
        count = 1
        for d in shape:
            count *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * count]}
        offset += 4 * count
        if not header_only:
            data.extend(struct.pack(f"<{count}f", *(floats if floats is not None else [0.0] * count)))
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


def head(hidden, classes, seed):
    if hidden == 0:
        return [("output.weight", [classes, FEATURES], values(classes * FEATURES, seed)),
                ("output.bias", [classes], values(classes, seed + 1))]
    return [("hidden.weight", [hidden, FEATURES], values(hidden * FEATURES, seed)),
            ("hidden.bias", [hidden], values(hidden, seed + 1)),
            ("output.weight", [classes, hidden], values(classes * hidden, seed + 2)),
            ("output.bias", [classes], values(classes, seed + 3))]


def last_block(statistics):
    """MobileNetV2's features.18: a 1x1 conv 320 -> 1280 and its batch norm, zeros."""
    tensors = [("features.18.0.weight", [1280, 320, 1, 1], None),
               ("features.18.1.weight", [1280], None),
               ("features.18.1.bias", [1280], None)]
    if statistics:
        tensors += [("features.18.1.running_mean", [1280], None), ("features.18.1.running_var", [1280], None)]
    return tensors


def report(classes):
    """TrainReport as 540a91a and a50359f serialised it (no `kept_final`)."""
    return {"epochs_run": 5, "best_epoch": 4, "val_accuracy": 1.0, "val_loss": 0.125,
            "per_class_accuracy": [1.0] * classes,
            "confusion": {"counts": [[1 if i == j else 0 for j in range(classes)] for i in range(classes)]},
            "train_samples": 2, "val_samples": 2}


def model_v1_metadata(classes, hidden, blocks):
    return {
        "graft.format": "graft-model",
        "graft.version": "1",
        "graft.classes": json.dumps(classes),
        "graft.backbone": "mobilenet_v2",
        "graft.backbone_sha256": BACKBONE_SHA,
        "graft.preprocessing": json.dumps({"resize_shorter": 256, "crop": 224, "mean": [0.485, 0.456, 0.406],
                                           "std": [0.229, 0.224, 0.225]}),
        "graft.head": json.dumps({"in_dim": FEATURES, "hidden": hidden, "classes": len(classes)}),
        "graft.fine_tuned_blocks": json.dumps(blocks),
        "graft.report": json.dumps(report(len(classes))),
    }


def png(width, height, rgb):
    """A tiny RGB PNG (stored deflate blocks via zlib)."""
    import zlib
    raw = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def project_v1():
    """A .graft file as a50359f's write_archive made it: serde_json pretty manifest (the head's
    bytes left out as `[]`), model.safetensors deflated, images stored."""
    settings = {"epochs": 5, "batch_size": 16, "learning_rate": 0.001, "backbone_learning_rate": 0.0001,
                "hidden": 0, "dropout": 0.2, "weight_decay": 0.01, "val_fraction": 0.0, "seed": 0, "unfreeze": 0,
                "head_epochs": 5, "cosine_decay": False, "augment": {"enabled": False, "strength": 0.5},
                "batch_norm": "frozen"}
    epoch = {"epoch": 1, "stage": "head", "train_loss": 0.5, "train_accuracy": 1.0, "val_loss": None,
             "val_accuracy": None, "confusion": {"counts": [[1, 0], [0, 1]]}}
    key = {"architecture": "mobilenet_v2", "weights_sha256": BACKBONE_SHA}
    project = {
        "version": 1, "backbone": key,
        "classes": [{"id": 1, "name": "Trouser", "sample_ids": [3]}, {"id": 2, "name": "Bag", "sample_ids": [4]}],
        "settings": settings, "backend": "auto",
        "head": {"backbone": key, "class_names": ["Trouser", "Bag"], "report": report(2), "safetensors": []},
        "history": [epoch],
    }
    samples = [{"id": 3, "file": "images/3.png", "width": 4, "height": 3},
               {"id": 4, "file": "images/4.png", "width": 4, "height": 3}]
    manifest = {"format": "graft-project", "version": 1, "name": "Old lesson", "project": project,
                "samples": samples}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("manifest.json"), json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
        z.writestr(zipfile.ZipInfo("model.safetensors"), safetensors(head(0, 2, 7)), zipfile.ZIP_DEFLATED)
        z.writestr(zipfile.ZipInfo("images/3.png"), png(4, 3, (200, 30, 30)), zipfile.ZIP_STORED)
        z.writestr(zipfile.ZipInfo("images/4.png"), png(4, 3, (30, 30, 200)), zipfile.ZIP_STORED)
    return out.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "head-bare-hidden.safetensors": safetensors(head(4, 3, 1)),
        "finetuned-no-stats.header": safetensors(head(0, 2, 5) + last_block(False), header_only=True),
        "model-v1-finetuned.header": safetensors(head(0, 2, 5) + last_block(True),
                                                 model_v1_metadata(["cat", "dog"], 0, [18]), header_only=True),
        "project-v1.graft": project_v1(),
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"wrote {name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
