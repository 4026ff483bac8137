#!/usr/bin/env python3
"""LogME (You et al., ICML 2021) in NumPy, written the direct way, and the fixture the Rust
implementation (src/transfer/logme.rs, which works in the eigenbasis of the smaller Gram
matrix) is checked against.

    /usr/bin/python3 tests/reference/logme_reference.py   # writes tests/fixtures/logme_reference.json

For each class c, y = [label == c] (N,), features F (N, D). A Bayesian linear model
y ~ N(F w, 1/beta), w ~ N(0, I/alpha); the fixed-point iteration of the paper (and of the
authors' code, thuml/LogME) updates
    gamma = sum_i beta l_i / (alpha + beta l_i)        (l: eigenvalues of F^T F, D of them)
    m     = beta (alpha I + beta F^T F)^-1 F^T y
    alpha = gamma / |m|^2,  beta = (N - gamma) / |y - F m|^2
until alpha / beta moves by less than 1%, at most 11 times; the evidence per sample is
    (D/2 log alpha + N/2 log beta - 1/2 sum_i log(alpha + beta l_i)
     - beta/2 |y - F m|^2 - alpha/2 |m|^2 - N/2 log 2 pi) / N
and LogME is its mean over the classes. Here m comes from a D x D solve, independent of the
Rust code's eigenbasis.
"""
import json
import os

import numpy as np

EPSILON = 1e-5


def class_evidence(f, y):
    n, d = f.shape
    ftf = f.T @ f
    eigenvalues = np.clip(np.linalg.eigvalsh(ftf), 0.0, None)
    fty = f.T @ y
    alpha, beta = 1.0, 1.0
    lam = alpha / beta
    for _ in range(11):
        gamma = (eigenvalues / (eigenvalues + lam)).sum()
        m = beta * np.linalg.solve(alpha * np.eye(d) + beta * ftf, fty)
        alpha_de = (m * m).sum()
        alpha = gamma / (alpha_de + EPSILON)
        beta_de = ((y - f @ m) ** 2).sum()
        beta = (n - gamma) / (beta_de + EPSILON)
        new_lam = alpha / beta
        if abs(new_lam - lam) / lam < 0.01:
            break
        lam = new_lam
    evidence = (
        d / 2.0 * np.log(alpha)
        + n / 2.0 * np.log(beta)
        - 0.5 * np.sum(np.log(alpha + beta * eigenvalues))
        - beta / 2.0 * (beta_de + EPSILON)
        - alpha / 2.0 * (alpha_de + EPSILON)
        - n / 2.0 * np.log(2 * np.pi)
    )
    return evidence / n


def logme(f, labels, classes):
    f = f.astype(np.float64)
    return float(np.mean([class_evidence(f, (labels == c).astype(np.float64)) for c in range(classes)]))


def case(rng, n, d, classes, separation):
    """Features with class-dependent means: more separation, more transferable."""
    labels = np.arange(n) % classes
    centres = rng.normal(size=(classes, d))
    f = rng.normal(size=(n, d)) + separation * centres[labels]
    f = np.maximum(f, 0).astype(np.float32)  # non-negative, like pooled ReLU6 features
    return {"features": f.round(4).tolist(), "labels": labels.tolist(), "classes": classes}


def main():
    rng = np.random.default_rng(2021)
    cases = {
        "fewer_samples_than_dims": case(rng, 30, 48, 3, 1.0),
        "more_samples_than_dims": case(rng, 90, 12, 3, 1.0),
        "weakly_separated": case(rng, 90, 12, 3, 0.2),
    }
    for c in cases.values():
        f = np.array(c["features"], dtype=np.float32)
        c["logme"] = logme(f, np.array(c["labels"]), c["classes"])
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logme_reference.json")
    with open(out, "w") as fh:
        json.dump(cases, fh)
    print({k: v["logme"] for k, v in cases.items()})


if __name__ == "__main__":
    main()
