//! LogME (You et al., ICML 2021): how well a backbone's features suit a labelled data set,
//! without training. Higher is better; scores of two backbones on the same images compare.
//!
//! Features `F (N, D)`, for each class `c` the target `y = [label == c] (N)`. A Bayesian
//! linear model `y ~ N(F w, 1/beta)`, `w ~ N(0, I/alpha)`; its log marginal evidence is
//! maximised over `alpha, beta` by the paper's fixed-point iteration (at most 11 steps, until
//! `alpha / beta` moves by less than 1%):
//!
//! ```text
//! gamma = sum_i beta l_i / (alpha + beta l_i)          l: eigenvalues of F^T F (D of them)
//! m     = beta (alpha I + beta F^T F)^-1 F^T y
//! alpha = gamma / |m|^2,    beta = (N - gamma) / |y - F m|^2
//! evidence / N = (D/2 log alpha + N/2 log beta - 1/2 sum_i log(alpha + beta l_i)
//!                 - beta/2 |y - F m|^2 - alpha/2 |m|^2 - N/2 log 2 pi) / N
//! ```
//!
//! LogME is the mean over the classes. Everything is computed in the eigenbasis of the
//! smaller Gram matrix (`F F^T` when `N <= D`, else `F^T F`, `k = min(N, D)`): with
//! `F F^T = U diag(l) U^T` and `p = U^T y`, `|m|^2 = sum_i (beta l_i^1/2 p_i / (alpha + beta
//! l_i))^2` and `F m = U (beta l p / (alpha + beta l))`; the `D - k` zero eigenvalues add
//! `(D - k) log alpha` to the sum of logs. One `k x k` symmetric eigendecomposition
//! (Householder + QL, f64; its twin is Jacobi) serves every class. The twin is `tests/reference/logme_reference.py`, which
//! solves the `D x D` system directly.

use crate::error::{GraftError, Result};

const EPSILON: f64 = 1e-5;
const MAX_STEPS: usize = 11;

/// LogME of `features` (`rows x dim`, row-major) for `labels` in `0..classes`.
pub fn logme(features: &[f32], dim: usize, labels: &[usize], classes: usize) -> Result<f64> {
    let n = labels.len();
    if dim == 0 || features.len() != n * dim {
        return Err(GraftError::Training(format!("{} feature values for {n} samples of {dim}", features.len())));
    }
    if classes < 2 || n <= classes || labels.iter().any(|&l| l >= classes) {
        return Err(GraftError::Training(format!(
            "LogME needs at least two classes and more samples than classes ({n} samples, {classes} classes)"
        )));
    }
    let basis = GramBasis::new(features, n, dim);
    let evidences = (0..classes).map(|c| {
        let y: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l == c))).collect();
        basis.evidence(&y)
    });
    Ok(evidences.sum::<f64>() / classes as f64)
}

/// The eigenbasis of the smaller Gram matrix: eigenvalues `l (k)` and, for projecting a target
/// `y (N)`, the map `y -> U^T y`.
struct GramBasis {
    n: usize,
    dim: usize,
    eigenvalues: Vec<f64>,
    /// `k x N`, row `i` is `u_i^T` (the left singular vectors of `F`).
    projection: Vec<f64>,
}

impl GramBasis {
    fn new(features: &[f32], n: usize, dim: usize) -> Self {
        let f: Vec<f64> = features.iter().map(|&v| f64::from(v)).collect();
        let projection;
        let eigenvalues;
        if n <= dim {
            // F F^T = U diag(l) U^T directly.
            (eigenvalues, projection) = symmetric_eigen(gram(&f, n, dim, false), n);
        } else {
            // F^T F = V diag(l) V^T; u_i = F v_i / sqrt(l_i) (zero when l_i is).
            let (values, vectors) = symmetric_eigen(gram(&f, n, dim, true), dim);
            let mut rows = vec![0.0; dim * n];
            for (i, &l) in values.iter().enumerate() {
                let scale = if l > 1e-12 { 1.0 / l.sqrt() } else { 0.0 };
                let v = &vectors[i * dim..(i + 1) * dim];
                for r in 0..n {
                    rows[i * n + r] = dot(&f[r * dim..(r + 1) * dim], v) * scale;
                }
            }
            eigenvalues = values;
            projection = rows;
        }
        let eigenvalues = eigenvalues.into_iter().map(|l| l.max(0.0)).collect();
        Self { n, dim, eigenvalues, projection }
    }

    /// The evidence per sample of target `y`, at the fixed point of `alpha` and `beta`.
    fn evidence(&self, y: &[f64]) -> f64 {
        let (n, d) = (self.n as f64, self.dim as f64);
        let p: Vec<f64> = self.projection.chunks(self.n).map(|u| u.iter().zip(y).map(|(a, b)| a * b).sum()).collect();
        let y_norm: f64 = y.iter().map(|v| v * v).sum();
        let ls = &self.eigenvalues;
        let (mut alpha, mut beta) = (1.0f64, 1.0f64);
        let mut lam = alpha / beta;
        let (mut alpha_de, mut beta_de);
        let mut steps = 0;
        loop {
            let gamma: f64 = ls.iter().map(|l| l / (l + lam)).sum();
            // m's coordinates (scaled by sqrt(l)) and F m's, in the basis.
            let shrink: Vec<f64> = ls.iter().zip(&p).map(|(l, p)| beta * p / (alpha + beta * l)).collect();
            alpha_de = ls.iter().zip(&shrink).map(|(l, s)| l * s * s).sum::<f64>();
            let fm: Vec<f64> = ls.iter().zip(&shrink).map(|(l, s)| l * s).collect();
            // |y - U fm|^2 = |y|^2 - 2 p.fm + |fm|^2 (U has orthonormal columns).
            beta_de = (y_norm - 2.0 * dot(&p, &fm) + dot(&fm, &fm)).max(0.0);
            alpha = gamma / (alpha_de + EPSILON);
            beta = (n - gamma) / (beta_de + EPSILON);
            let new_lam = alpha / beta;
            steps += 1;
            if (new_lam - lam).abs() / lam < 0.01 || steps == MAX_STEPS {
                break;
            }
            lam = new_lam;
        }
        let zeros = d - ls.len() as f64;
        let log_sum: f64 = ls.iter().map(|l| (alpha + beta * l).ln()).sum::<f64>() + zeros * alpha.ln();
        let evidence = d / 2.0 * alpha.ln() + n / 2.0 * beta.ln()
            - 0.5 * log_sum
            - beta / 2.0 * (beta_de + EPSILON)
            - alpha / 2.0 * (alpha_de + EPSILON)
            - n / 2.0 * (2.0 * std::f64::consts::PI).ln();
        evidence / n
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `F F^T (N x N)`, or `F^T F (D x D)` when `columns`.
fn gram(f: &[f64], n: usize, dim: usize, columns: bool) -> Vec<f64> {
    let k = if columns { dim } else { n };
    let at = |i: usize, j: usize| if columns { f[j * dim + i] } else { f[i * dim + j] };
    let inner = if columns { n } else { dim };
    let mut g = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let value: f64 = (0..inner).map(|t| at(i, t) * at(j, t)).sum();
            g[i * k + j] = value;
            g[j * k + i] = value;
        }
    }
    g
}

/// Eigenvalues and eigenvectors of a symmetric `k x k` matrix (row-major): Householder
/// reduction to tridiagonal form, then the implicit QL iteration (EISPACK's tred2 and tql2, as
/// in JAMA), `O(k^3)` with a small constant. Eigenvector `i` is row `i` of the second result.
/// The naive twin is the cyclic Jacobi method in the tests.
fn symmetric_eigen(a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
    if k == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut v: Vec<Vec<f64>> = a.chunks(k).map(<[f64]>::to_vec).collect();
    let (mut d, mut e) = (vec![0.0; k], vec![0.0; k]);
    tridiagonalize(&mut v, &mut d, &mut e);
    // The QL sweeps rotate pairs of eigenvector columns: transposed, they are rows.
    let mut rows: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|r| v[r][i]).collect()).collect();
    tridiagonal_ql(&mut rows, &mut d, &mut e);
    (d, rows.concat())
}

/// tred2: `v` becomes the orthogonal transformation, `d` the diagonal and `e` the
/// subdiagonal (in `e[1..]`) of the tridiagonal matrix.
fn tridiagonalize(v: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    d.copy_from_slice(&v[n - 1]);
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
                v[j][i] = 0.0;
            }
        } else {
            for x in &mut d[..i] {
                *x /= scale;
                h += *x * *x;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v[j][i] = f;
                let mut g = e[j] + v[j][j] * f;
                for k in j + 1..i {
                    g += v[k][j] * d[k];
                    e[k] += v[k][j] * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    v[k][j] -= f * e[k] + g * d[k];
                }
                d[j] = v[i - 1][j];
                v[i][j] = 0.0;
            }
        }
        d[i] = h;
    }
    accumulate(v, d);
    e[0] = 0.0;
}

/// The end of tred2: the Householder transformations multiplied into `v`.
fn accumulate(v: &mut [Vec<f64>], d: &mut [f64]) {
    let n = d.len();
    for i in 0..n - 1 {
        v[n - 1][i] = v[i][i];
        v[i][i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k][i + 1] / h;
            }
            for j in 0..=i {
                let g: f64 = (0..=i).map(|k| v[k][i + 1] * v[k][j]).sum();
                for k in 0..=i {
                    v[k][j] -= g * d[k];
                }
            }
        }
        for row in v.iter_mut().take(i + 1) {
            row[i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[n - 1][j];
        v[n - 1][j] = 0.0;
    }
    v[n - 1][n - 1] = 1.0;
}

/// tql2 on the tridiagonal `d`, `e`: `d` becomes the eigenvalues, and each rotation is applied
/// to the eigenvector rows.
fn tridiagonal_ql(rows: &mut [Vec<f64>], d: &mut [f64], e: &mut [f64]) {
    let n = d.len();
    e.copy_within(1.., 0);
    e[n - 1] = 0.0;
    let (mut f, mut tst1) = (0.0f64, 0.0f64);
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let m = (l..n).find(|&m| e[m].abs() <= eps * tst1).unwrap_or(n - 1);
        if m > l {
            for _ in 0..100 {
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let r = if p < 0.0 { -p.hypot(1.0) } else { p.hypot(1.0) };
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                for x in &mut d[l + 2..] {
                    *x -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    let r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (left, right) = rows.split_at_mut(i + 1);
                    for (a, b) in left[i].iter_mut().zip(right[0].iter_mut()) {
                        let h = *b;
                        *b = s * *a + c * h;
                        *a = c * *a - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 || !e[l].is_finite() {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive twin: cyclic Jacobi rotations until the off-diagonal mass is negligible
    /// (eigenvector `i` is column `i`).
    fn jacobi_eigen(mut a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
        let mut v = vec![0.0; k * k];
        (0..k).for_each(|i| v[i * k + i] = 1.0);
        for _sweep in 0..50 {
            let off: f64 = (0..k * k).filter(|i| i / k != i % k).map(|i| a[i] * a[i]).sum();
            if off < 1e-24 {
                break;
            }
            for p in 0..k {
                for q in p + 1..k {
                    let apq = a[p * k + q];
                    if apq.abs() < 1e-300 {
                        continue;
                    }
                    let theta = (a[q * k + q] - a[p * k + p]) / (2.0 * apq);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                    for r in 0..k {
                        let (x, y) = (a[r * k + p], a[r * k + q]);
                        (a[r * k + p], a[r * k + q]) = (c * x - s * y, s * x + c * y);
                    }
                    for col in 0..k {
                        let (x, y) = (a[p * k + col], a[q * k + col]);
                        (a[p * k + col], a[q * k + col]) = (c * x - s * y, s * x + c * y);
                    }
                    for r in 0..k {
                        let (x, y) = (v[r * k + p], v[r * k + q]);
                        (v[r * k + p], v[r * k + q]) = (c * x - s * y, s * x + c * y);
                    }
                }
            }
        }
        ((0..k).map(|i| a[i * k + i]).collect(), v)
    }

    /// A random symmetric matrix (a Gram matrix, so positive semi-definite, with zeros).
    fn random_gram(k: usize, rank: usize, seed: u64) -> Vec<f64> {
        let mut rng = crate::train::rng::SplitMix64::new(seed);
        let f: Vec<f64> = (0..k * rank).map(|_| rng.next_f32() as f64 - 0.5).collect();
        gram(&f, k, rank, false)
    }

    #[test]
    fn householder_ql_agrees_with_jacobi_and_is_an_eigendecomposition() {
        for (k, rank, seed) in [(1, 1, 1), (2, 2, 2), (7, 7, 3), (12, 5, 4), (30, 30, 5)] {
            let a = random_gram(k, rank, seed);
            let (values, rows) = symmetric_eigen(a.clone(), k);
            for i in 0..k {
                let u = &rows[i * k..(i + 1) * k];
                for r in 0..k {
                    let au: f64 = (0..k).map(|c| a[r * k + c] * u[c]).sum();
                    assert!((au - values[i] * u[r]).abs() < 1e-10, "k {k}: A u != l u");
                }
                assert!((dot(u, u) - 1.0).abs() < 1e-10);
            }
            let (mut ours, mut twin) = (values.clone(), jacobi_eigen(a, k).0);
            ours.sort_by(f64::total_cmp);
            twin.sort_by(f64::total_cmp);
            for (a, b) in ours.iter().zip(&twin) {
                assert!((a - b).abs() < 1e-10, "k {k}: {a} vs Jacobi {b}");
            }
        }
    }
}
