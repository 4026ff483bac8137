#!/usr/bin/env python3
"""One DANN step in PyTorch (Ganin et al., JMLR 2016): the losses and the gradient of every
parameter, the fixture `tests/dann_parity.rs` compares the engine's step with.

    /usr/bin/python3 tests/reference/dann_reference.py

The model is the engine's: the head `Linear(D, H) -> ReLU -> Linear(H, C)` (`hidden`,
`output`), its hidden activations through a gradient reversal layer (identity forward, gradient
times -lambda backward) into the domain classifier `Linear(H, 100) -> ReLU -> Linear(100, 2)`
(`domain.hidden`, `domain.output`). Loss: cross-entropy of the source labels plus
cross-entropy of the domains (source 0, target 1) over both batches; lambda from the paper's
schedule, 2 / (1 + exp(-10 p)) - 1, at progress p = 0.3. Every value is a deterministic `wave`
(make_fixtures.py), so the fixture holds no weights.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures  # noqa: E402

D, H, C, DOMAIN_HIDDEN = 8, 5, 3, 100
N_SOURCE, N_TARGET = 6, 4
PROGRESS = 0.3


def wave(shape, a, b, scale=1.0):
    n = math.prod(shape)
    return torch.from_numpy(make_fixtures.wave(n, a, b, scale).reshape(shape))


class ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


def parameters():
    """Name -> tensor (requires grad); shapes as in the engine."""
    shapes = {
        "hidden.weight": (H, D), "hidden.bias": (H,), "output.weight": (C, H), "output.bias": (C,),
        "domain.hidden.weight": (DOMAIN_HIDDEN, H), "domain.hidden.bias": (DOMAIN_HIDDEN,),
        "domain.output.weight": (2, DOMAIN_HIDDEN), "domain.output.bias": (2,),
    }
    params = {}
    for t, (name, shape) in enumerate(shapes.items()):
        scale = 1.0 / math.sqrt(shape[1]) if len(shape) == 2 else 0.1
        params[name] = wave(shape, 1.3, 0.2 + 0.5 * t, scale).requires_grad_(True)
    return params


def main():
    p = parameters()
    xs = wave((N_SOURCE, D), 0.37, 0.0)
    xt = wave((N_TARGET, D), 0.53, 1.0) + 0.5
    labels = torch.tensor([i % C for i in range(N_SOURCE)])
    lam = 2.0 / (1.0 + math.exp(-10.0 * PROGRESS)) - 1.0
    features = lambda x: F.relu(F.linear(x, p["hidden.weight"], p["hidden.bias"]))
    hs, ht = features(xs), features(xt)
    logits = F.linear(hs, p["output.weight"], p["output.bias"])
    label_loss = F.cross_entropy(logits, labels)
    h = ReverseGradient.apply(torch.cat([hs, ht]), lam)
    d = F.linear(F.relu(F.linear(h, p["domain.hidden.weight"], p["domain.hidden.bias"])),
                 p["domain.output.weight"], p["domain.output.bias"])
    truth = torch.tensor([0] * N_SOURCE + [1] * N_TARGET)
    domain_loss = F.cross_entropy(d, truth)
    (label_loss + domain_loss).backward()
    out = {
        "torch": torch.__version__,
        "shapes": {"d": D, "h": H, "c": C, "source": N_SOURCE, "target": N_TARGET},
        "progress": PROGRESS,
        "lambda": lam,
        "label_loss": float(label_loss),
        "domain_loss": float(domain_loss),
        "domain_correct": int((d.argmax(1) == truth).sum()),
        "grads": {name: make_fixtures.summary(t.grad) for name, t in p.items()},
    }
    with open(os.path.join(make_fixtures.FIXTURES, "dann_reference.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(f"lambda {lam:.4f}, label loss {float(label_loss):.5f}, domain loss {float(domain_loss):.5f}")


if __name__ == "__main__":
    main()
