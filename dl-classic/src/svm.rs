//! Support vector machines.
//!
//! - [`LinearSvm`]: the primal `min ||w||^2 / 2 + C sum_i loss(y_i w.x_i)` with the
//!   hinge or squared-hinge loss, solved in the dual by coordinate descent (Hsieh et
//!   al. 2008, liblinear's solver). The bias is a constant feature of value 1 that is
//!   regularized like the weights (liblinear's convention, so results match
//!   scikit-learn's `LinearSVC`). Multi-class: one-vs-rest.
//! - [`KernelSvm`]: the dual `min a^T Q a / 2 - 1^T a, 0 <= a <= C, y^T a = 0` with
//!   `Q_ij = y_i y_j K(x_i, x_j)`, solved by SMO with libsvm's second-order working
//!   set selection (Fan, Chen & Lin 2005); kernels linear, polynomial
//!   `(gamma x.z + coef0)^degree` and RBF `exp(-gamma ||x - z||^2)`. Multi-class:
//!   one-vs-one voting, ties to the lower class (libsvm's rule).
//!   `gamma = None` means scikit-learn's `"scale"`: `1 / (d var(X))`.
//!
//! Kernel values are computed when SMO first needs them, a column at a time, and
//! kept in a per-problem cache (least recently used column dropped past 64 MB);
//! under `std` the one-vs-one problems are solved in parallel.

use crate::error::{check_predict, check_xy, param, Error, Result};
use crate::knn::{argmax, encode_labels};
use crate::linalg::dot;
use crate::tree::to_f64;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// Loss of the linear SVM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Loss {
    /// `max(0, 1 - m)`.
    Hinge,
    /// `max(0, 1 - m)^2` (liblinear's default).
    #[default]
    SquaredHinge,
}

/// Linear SVM hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSvm {
    /// Inverse regularization (> 0).
    pub c: f64,
    /// Loss.
    pub loss: Loss,
    /// Stop when the projected-gradient spread is below this (> 0).
    pub tol: f64,
    /// Epochs over the data (>= 1).
    pub max_iter: usize,
    /// Seed of the coordinate order.
    pub seed: u64,
}

impl Default for LinearSvm {
    fn default() -> Self {
        LinearSvm {
            c: 1.0,
            loss: Loss::SquaredHinge,
            tol: 1e-4,
            max_iter: 1000,
            seed: 0,
        }
    }
}

impl LinearSvm {
    /// Sets `C`.
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    /// Sets the loss.
    pub fn loss(mut self, l: Loss) -> Self {
        self.loss = l;
        self
    }
    /// Sets the tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Sets the epoch cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(self.c > 0.0 && self.c.is_finite(), "C", self.c, "> 0")?;
        param(self.tol > 0.0, "tol", self.tol, "> 0")?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")
    }

    /// Dual coordinate descent for one binary problem (`t` in {-1, +1}); `x` has
    /// the bias column appended (`d + 1` columns). Returns `w` (`d + 1`).
    fn solve_binary(&self, x: &[f64], n: usize, d1: usize, t: &[f64], rng: &mut Rng) -> Vec<f64> {
        let (upper, diag) = match self.loss {
            Loss::Hinge => (self.c, 0.0),
            Loss::SquaredHinge => (f64::INFINITY, 0.5 / self.c),
        };
        let qd: Vec<f64> = x.chunks_exact(d1).map(|r| dot(r, r) + diag).collect();
        let mut alpha = vec![0.0; n];
        let mut w = vec![0.0; d1];
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..self.max_iter {
            rng.shuffle(&mut order);
            let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
            for &i in &order {
                let row = &x[i * d1..(i + 1) * d1];
                let g = t[i] * dot(&w, row) - 1.0 + diag * alpha[i];
                let pg = if alpha[i] == 0.0 {
                    g.min(0.0)
                } else if alpha[i] == upper {
                    g.max(0.0)
                } else {
                    g
                };
                pg_max = pg_max.max(pg);
                pg_min = pg_min.min(pg);
                if pg.abs() > 1e-12 {
                    let old = alpha[i];
                    alpha[i] = (old - g / qd[i]).clamp(0.0, upper);
                    let delta = (alpha[i] - old) * t[i];
                    for (wv, xv) in w.iter_mut().zip(row) {
                        *wv += delta * xv;
                    }
                }
            }
            if pg_max - pg_min <= self.tol {
                break;
            }
        }
        w
    }
}

/// A fitted linear SVM: one `(w, b)` per class (one-vs-rest), or one for two classes.
#[derive(Clone, Debug)]
pub struct FittedLinearSvm<T> {
    /// Class scores.
    pub linear: crate::linear::FittedLinearClassifier<T>,
}

impl<T: Scalar> Predict<T, usize> for FittedLinearSvm<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        self.linear.predict_into(x, out)
    }
}

impl<T: Scalar> Fit<T, usize> for LinearSvm {
    type Fitted = FittedLinearSvm<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<FittedLinearSvm<T>> {
        self.validate()?;
        check_xy(x, y.len(), "LinearSvm::fit")?;
        let (classes, yi) = encode_labels(y);
        let k = classes.len();
        if k < 2 {
            return Err(Error::SingleClass {
                op: "LinearSvm::fit",
            });
        }
        let (n, d) = (x.rows(), x.cols());
        let d1 = d + 1;
        let mut xa = Vec::with_capacity(n * d1);
        for r in x.iter_rows() {
            xa.extend(r.iter().map(|v| v.to_f64_lossless()));
            xa.push(1.0);
        }
        let mut rng = Rng::seed_from_u64(self.seed);
        let planes = if k == 2 { 1 } else { k };
        let mut weights = vec![T::ZERO; d * k];
        let mut intercept = vec![T::ZERO; k];
        for c in 0..planes {
            let pos = if planes == 1 { 1 } else { c };
            let t: Vec<f64> = yi
                .iter()
                .map(|&l| if l == pos { 1.0 } else { -1.0 })
                .collect();
            let w = self.solve_binary(&xa, n, d1, &t, &mut rng.fork(c as u64));
            let cols: &[(usize, f64)] = if planes == 1 {
                &[(1, 1.0), (0, -1.0)]
            } else {
                &[(c, 1.0)]
            };
            for &(col, s) in cols {
                for j in 0..d {
                    weights[j * k + col] = T::from_f64_lossy(s * w[j]);
                }
                intercept[col] = T::from_f64_lossy(s * w[d]);
            }
        }
        Ok(FittedLinearSvm {
            linear: crate::linear::FittedLinearClassifier {
                map: crate::linear::LinearMap {
                    weights,
                    intercept,
                    n_features: d,
                    n_outputs: k,
                },
                classes,
            },
        })
    }
}

/// A kernel function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel {
    /// `x.z`
    Linear,
    /// `(gamma x.z + coef0)^degree`
    Poly {
        /// Degree (>= 1).
        degree: u32,
        /// Additive constant.
        coef0: f64,
    },
    /// `exp(-gamma ||x - z||^2)`
    Rbf,
}

/// Kernel SVM hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelSvm {
    /// Inverse regularization (> 0).
    pub c: f64,
    /// Kernel.
    pub kernel: Kernel,
    /// Kernel scale (> 0); `None` = `1 / (d var(X))` ("scale").
    pub gamma: Option<f64>,
    /// KKT tolerance of SMO's stopping rule (> 0).
    pub tol: f64,
    /// SMO iteration cap per binary problem (>= 1).
    pub max_iter: usize,
}

impl Default for KernelSvm {
    /// libsvm's / scikit-learn's defaults: `C = 1`, RBF, `gamma = "scale"`, `tol = 1e-3`.
    fn default() -> Self {
        KernelSvm {
            c: 1.0,
            kernel: Kernel::Rbf,
            gamma: None,
            tol: 1e-3,
            max_iter: 10_000_000,
        }
    }
}

impl KernelSvm {
    /// Sets `C`.
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    /// Sets the kernel.
    pub fn kernel(mut self, k: Kernel) -> Self {
        self.kernel = k;
        self
    }
    /// Sets `gamma` (`None` = "scale").
    pub fn gamma(mut self, g: Option<f64>) -> Self {
        self.gamma = g;
        self
    }
    /// Sets the tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(self.c > 0.0 && self.c.is_finite(), "C", self.c, "> 0")?;
        if let Some(g) = self.gamma {
            param(g > 0.0 && g.is_finite(), "gamma", g, "> 0")?;
        }
        if let Kernel::Poly { degree, coef0 } = self.kernel {
            param(degree >= 1, "degree", degree as f64, ">= 1")?;
            param(coef0.is_finite(), "coef0", coef0, "finite")?;
        }
        param(self.tol > 0.0, "tol", self.tol, "> 0")?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")
    }
}

fn kernel_value(kernel: Kernel, gamma: f64, a: &[f64], b: &[f64]) -> f64 {
    match kernel {
        Kernel::Linear => dot(a, b),
        Kernel::Poly { degree, coef0 } => poly(gamma * dot(a, b) + coef0, degree),
        Kernel::Rbf => {
            let s: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
            rbf(gamma, s)
        }
    }
}

#[inline]
fn poly(base: f64, degree: u32) -> f64 {
    num_traits::Float::powi(base, degree as i32)
}

#[inline]
fn rbf(gamma: f64, sq_dist: f64) -> f64 {
    // num-traits maps this to std's exp (the platform libm) under std, else to libm.
    num_traits::Float::exp(-gamma * sq_dist)
}

/// `out[s] = K(xa, x_s)` for the `l` rows stored feature-major in `xt` (`d x l`),
/// bit-identical to [`kernel_value`] (each entry sums over features in order); the
/// feature-major layout lets the loop run across rows, which vectorizes without a
/// horizontal sum. Under `std` on x86-64 with AVX2 the same code is compiled for
/// 4-lane vectors.
fn fill_column(kernel: Kernel, gamma: f64, xt: &[f64], xa: &[f64], out: &mut [f64]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked on the line above).
        unsafe { fill_column_avx2(kernel, gamma, xt, xa, out) };
        return;
    }
    fill_column_body(kernel, gamma, xt, xa, out);
}

/// [`fill_column_body`] compiled with AVX2 enabled.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn fill_column_avx2(kernel: Kernel, gamma: f64, xt: &[f64], xa: &[f64], out: &mut [f64]) {
    fill_column_body(kernel, gamma, xt, xa, out);
}

#[inline(always)]
fn fill_column_body(kernel: Kernel, gamma: f64, xt: &[f64], xa: &[f64], out: &mut [f64]) {
    let l = out.len();
    out.fill(0.0);
    match kernel {
        Kernel::Rbf => {
            for (&a, col) in xa.iter().zip(xt.chunks_exact(l)) {
                for (o, &x) in out.iter_mut().zip(col) {
                    let t = x - a;
                    *o += t * t;
                }
            }
            for o in out.iter_mut() {
                *o = rbf(gamma, *o);
            }
        }
        Kernel::Linear | Kernel::Poly { .. } => {
            for (&a, col) in xa.iter().zip(xt.chunks_exact(l)) {
                for (o, &x) in out.iter_mut().zip(col) {
                    *o += x * a;
                }
            }
            if let Kernel::Poly { degree, coef0 } = kernel {
                for o in out.iter_mut() {
                    *o = poly(gamma * *o + coef0, degree);
                }
            }
        }
    }
}

/// One binary sub-problem's solution: support vectors (indices into the training
/// set), their `alpha_i y_i`, and `rho` (decision = `sum coef K - rho`).
#[derive(Clone, Debug)]
struct BinarySvm {
    sv: Vec<usize>,
    coef: Vec<f64>,
    rho: f64,
}

/// Bytes of kernel columns one binary problem may keep (libsvm's `cache_size`
/// idea): columns are computed when SMO first needs them and the least recently
/// used one is dropped when the budget is full.
const CACHE_BYTES: usize = 64 << 20;

/// Kernel columns `K(x_a, x_s)` (all `s` of a sub-problem) computed on demand.
/// SMO touches only the columns of the pairs it updates, usually a small fraction
/// of the `l^2` matrix, so this is much cheaper than computing the matrix first.
struct KernelColumns<'a> {
    /// The sub-problem's rows, contiguous (`l x d`).
    x: &'a [f64],
    /// The same, feature-major (`d x l`).
    xt: Vec<f64>,
    d: usize,
    l: usize,
    kernel: Kernel,
    gamma: f64,
    /// Cache slot of each column, or `usize::MAX`.
    slot_of: Vec<usize>,
    /// Column held by each slot.
    owner: Vec<usize>,
    /// Last use of each slot (LRU clock).
    used: Vec<u64>,
    clock: u64,
    data: Vec<f64>,
    capacity: usize,
}

impl<'a> KernelColumns<'a> {
    fn new(x: &'a [f64], l: usize, d: usize, kernel: Kernel, gamma: f64) -> Self {
        let capacity = (CACHE_BYTES / (8 * l.max(1))).clamp(2, l.max(2));
        let mut xt = vec![0.0; l * d];
        for (s, row) in x.chunks_exact(d).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xt[j * l + s] = v;
            }
        }
        KernelColumns {
            x,
            xt,
            d,
            l,
            kernel,
            gamma,
            slot_of: vec![usize::MAX; l],
            owner: Vec::with_capacity(capacity),
            used: Vec::with_capacity(capacity),
            clock: 0,
            // Room for a typical run's columns up front (growing copies them).
            data: Vec::with_capacity(capacity.min(256) * l),
            capacity,
        }
    }

    /// The cache slot holding column `a`, computing it if needed.
    fn slot(&mut self, a: usize) -> usize {
        self.clock += 1;
        let s = self.slot_of[a];
        if s != usize::MAX {
            self.used[s] = self.clock;
            return s;
        }
        let s = if self.owner.len() < self.capacity {
            self.owner.push(a);
            self.used.push(self.clock);
            self.data.resize(self.owner.len() * self.l, 0.0);
            self.owner.len() - 1
        } else {
            let s = (0..self.owner.len())
                .min_by_key(|&s| self.used[s])
                .unwrap_or(0);
            self.slot_of[self.owner[s]] = usize::MAX;
            self.owner[s] = a;
            self.used[s] = self.clock;
            s
        };
        self.slot_of[a] = s;
        let (d, l) = (self.d, self.l);
        fill_column(
            self.kernel,
            self.gamma,
            &self.xt,
            &self.x[a * d..(a + 1) * d],
            &mut self.data[s * l..(s + 1) * l],
        );
        s
    }

    fn col(&self, slot: usize) -> &[f64] {
        &self.data[slot * self.l..(slot + 1) * self.l]
    }
}

/// SMO on the `l` rows of `xs` (the sub-problem's samples, contiguous) with labels
/// `t` in {-1, +1}; `idx` maps them back to training rows.
#[allow(clippy::too_many_arguments)]
fn smo(
    xs: &[f64],
    d: usize,
    idx: &[usize],
    t: &[f64],
    kernel: Kernel,
    gamma: f64,
    c: f64,
    tol: f64,
    max_iter: usize,
) -> BinarySvm {
    const TAU: f64 = 1e-12;
    let l = idx.len();
    let mut cols = KernelColumns::new(xs, l, d, kernel, gamma);
    let qd: Vec<f64> = xs
        .chunks_exact(d)
        .map(|r| kernel_value(kernel, gamma, r, r))
        .collect();
    let mut alpha = vec![0.0; l];
    let mut g = vec![-1.0; l];
    for _ in 0..max_iter {
        // Working set selection (WSS 3 of Fan, Chen & Lin).
        let mut gmax = f64::NEG_INFINITY;
        let mut i = usize::MAX;
        for s in 0..l {
            let up = if t[s] > 0.0 {
                alpha[s] < c
            } else {
                alpha[s] > 0.0
            };
            if up && -t[s] * g[s] >= gmax {
                gmax = -t[s] * g[s];
                i = s;
            }
        }
        if i == usize::MAX {
            break;
        }
        let mut gmax2 = f64::NEG_INFINITY;
        let mut obj_min = f64::INFINITY;
        let mut j = usize::MAX;
        let si = cols.slot(i);
        let ki = cols.col(si);
        for s in 0..l {
            let low = if t[s] > 0.0 {
                alpha[s] > 0.0
            } else {
                alpha[s] < c
            };
            if !low {
                continue;
            }
            let v = t[s] * g[s];
            gmax2 = gmax2.max(v);
            let grad_diff = gmax + v;
            if grad_diff > 0.0 {
                let quad = qd[i] + qd[s] - 2.0 * ki[s];
                let obj = -grad_diff * grad_diff / if quad > 0.0 { quad } else { TAU };
                if obj <= obj_min {
                    obj_min = obj;
                    j = s;
                }
            }
        }
        if gmax + gmax2 < tol || j == usize::MAX {
            break;
        }
        // Analytic update of (alpha_i, alpha_j) with clipping (libsvm's code).
        let (ai, aj) = (alpha[i], alpha[j]);
        let qij = t[i] * t[j] * ki[j];
        if t[i] != t[j] {
            let quad = (qd[i] + qd[j] + 2.0 * qij).max(TAU);
            let delta = (-g[i] - g[j]) / quad;
            let diff = ai - aj;
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 {
                if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = diff;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = -diff;
            }
            if diff > 0.0 {
                if alpha[i] > c {
                    alpha[i] = c;
                    alpha[j] = c - diff;
                }
            } else if alpha[j] > c {
                alpha[j] = c;
                alpha[i] = c + diff;
            }
        } else {
            let quad = (qd[i] + qd[j] - 2.0 * qij).max(TAU);
            let delta = (g[i] - g[j]) / quad;
            let sum = ai + aj;
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > c {
                if alpha[i] > c {
                    alpha[i] = c;
                    alpha[j] = sum - c;
                }
            } else if alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = sum;
            }
            if sum > c {
                if alpha[j] > c {
                    alpha[j] = c;
                    alpha[i] = sum - c;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = sum;
            }
        }
        let (di, dj) = (t[i] * (alpha[i] - ai), t[j] * (alpha[j] - aj));
        // Column i is the most recently used, so fetching j cannot evict it.
        let sj = cols.slot(j);
        let (ki, kj) = (cols.col(si), cols.col(sj));
        for s in 0..l {
            g[s] += t[s] * (ki[s] * di + kj[s] * dj);
        }
    }
    // rho: mean of y G over free vectors, else the middle of the feasible interval.
    let (mut ub, mut lb, mut sum, mut nfree) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
    for s in 0..l {
        let yg = t[s] * g[s];
        if alpha[s] >= c {
            if t[s] < 0.0 {
                ub = ub.min(yg);
            } else {
                lb = lb.max(yg);
            }
        } else if alpha[s] <= 0.0 {
            if t[s] > 0.0 {
                ub = ub.min(yg);
            } else {
                lb = lb.max(yg);
            }
        } else {
            nfree += 1;
            sum += yg;
        }
    }
    let rho = if nfree > 0 {
        sum / nfree as f64
    } else {
        (ub + lb) / 2.0
    };
    let sv: Vec<usize> = (0..l).filter(|&s| alpha[s] > 0.0).collect();
    BinarySvm {
        coef: sv.iter().map(|&s| alpha[s] * t[s]).collect(),
        sv: sv.iter().map(|&s| idx[s]).collect(),
        rho,
    }
}

/// The binary machine separating classes `a` (positive) and `b`: rows of its
/// support vectors in the shared support set, their `alpha_i y_i`, and `rho`.
type PairSvm = (usize, usize, Vec<usize>, Vec<f64>, f64);

/// A fitted kernel SVM (one-vs-one).
#[derive(Clone, Debug)]
pub struct FittedKernelSvm<T> {
    /// Labels in class-index order.
    pub classes: Vec<usize>,
    /// Training rows that are a support vector of some pair (row-major, f64).
    support: Vec<f64>,
    /// One binary machine per pair of classes `a < b`.
    pairs: Vec<PairSvm>,
    kernel: Kernel,
    gamma: f64,
    n_features: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedKernelSvm<T> {
    /// Number of distinct support vectors.
    pub fn n_support(&self) -> usize {
        self.support.len() / self.n_features.max(1)
    }

    /// The kernel scale used (resolved from "scale" if it was `None`).
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    fn predict_row(&self, row: &[f64], kv: &mut [f64], votes: &mut [f64]) -> usize {
        let d = self.n_features;
        for (s, kvs) in kv.iter_mut().enumerate() {
            *kvs = kernel_value(
                self.kernel,
                self.gamma,
                &self.support[s * d..(s + 1) * d],
                row,
            );
        }
        votes.iter_mut().for_each(|v| *v = 0.0);
        for (a, b, sv, coef, rho) in &self.pairs {
            let dec: f64 = sv.iter().zip(coef).map(|(&s, c)| c * kv[s]).sum::<f64>() - rho;
            if dec > 0.0 {
                votes[*a] += 1.0;
            } else {
                votes[*b] += 1.0;
            }
        }
        argmax(votes)
    }
}

impl<T: Scalar> Predict<T, usize> for FittedKernelSvm<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "KernelSvm::predict")?;
        let mut kv = vec![0.0; self.n_support()];
        let mut votes = vec![0.0; self.classes.len()];
        let mut row = vec![0.0; self.n_features];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            for (a, b) in row.iter_mut().zip(r) {
                *a = b.to_f64_lossless();
            }
            *o = self.classes[self.predict_row(&row, &mut kv, &mut votes)];
        }
        Ok(())
    }
}

impl<T: Scalar> Fit<T, usize> for KernelSvm {
    type Fitted = FittedKernelSvm<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<FittedKernelSvm<T>> {
        self.validate()?;
        check_xy(x, y.len(), "KernelSvm::fit")?;
        let (classes, yi) = encode_labels(y);
        let nc = classes.len();
        if nc < 2 {
            return Err(Error::SingleClass {
                op: "KernelSvm::fit",
            });
        }
        let (n, d) = (x.rows(), x.cols());
        let xf = to_f64(x);
        let gamma = match self.gamma {
            Some(g) => g,
            None => {
                let m = xf.iter().sum::<f64>() / xf.len() as f64;
                let var = xf.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / xf.len() as f64;
                if var > 0.0 {
                    1.0 / (d as f64 * var)
                } else {
                    1.0
                }
            }
        };
        let mut problems = Vec::new();
        for a in 0..nc {
            for b in a + 1..nc {
                problems.push((a, b));
            }
        }
        let (kernel, c, tol, max_iter) = (self.kernel, self.c, self.tol, self.max_iter);
        let solve = |&(a, b): &(usize, usize)| {
            let idx: Vec<usize> = (0..n).filter(|&i| yi[i] == a || yi[i] == b).collect();
            let t: Vec<f64> = idx
                .iter()
                .map(|&i| if yi[i] == a { 1.0 } else { -1.0 })
                .collect();
            let mut xs = Vec::with_capacity(idx.len() * d);
            for &i in &idx {
                xs.extend_from_slice(&xf[i * d..(i + 1) * d]);
            }
            (a, b, smo(&xs, d, &idx, &t, kernel, gamma, c, tol, max_iter))
        };
        // The binary problems are independent: under `std` they run on rayon's
        // threads (results are collected in pair order, whatever the scheduling).
        #[cfg(feature = "std")]
        let pairs_raw: Vec<(usize, usize, BinarySvm)> = {
            use rayon::prelude::*;
            problems.par_iter().map(solve).collect()
        };
        #[cfg(not(feature = "std"))]
        let pairs_raw: Vec<(usize, usize, BinarySvm)> = problems.iter().map(solve).collect();
        // Store each support vector once.
        let mut slot = vec![usize::MAX; n];
        let mut support = Vec::new();
        let mut pairs = Vec::with_capacity(pairs_raw.len());
        for (a, b, bs) in pairs_raw {
            let rows = bs
                .sv
                .iter()
                .map(|&i| {
                    if slot[i] == usize::MAX {
                        slot[i] = support.len() / d;
                        support.extend_from_slice(&xf[i * d..(i + 1) * d]);
                    }
                    slot[i]
                })
                .collect();
            pairs.push((a, b, rows, bs.coef, bs.rho));
        }
        Ok(FittedKernelSvm {
            classes,
            support,
            pairs,
            kernel: self.kernel,
            gamma,
            n_features: d,
            _t: core::marker::PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_margin_linear_svm_on_two_points() {
        // Points -1 and +1 on a line: the max-margin boundary is 0, w = 1, b = 0,
        // both are support vectors with alpha = 1/2 (||w||^2 = sum alpha = 1).
        let x = [-1.0f64, 1.0];
        let m = KernelSvm::default()
            .kernel(Kernel::Linear)
            .c(100.0)
            .tol(1e-9)
            .fit(MatRef::new(&x, 2, 1).unwrap(), &[0, 1])
            .unwrap();
        let (_, _, _, coef, rho) = &m.pairs[0];
        assert!(rho.abs() < 1e-9);
        for c in coef {
            assert!((c.abs() - 0.5).abs() < 1e-9, "{coef:?}");
        }
        assert_eq!(
            m.predict(MatRef::new(&[-0.1, 0.1], 2, 1).unwrap()).unwrap(),
            vec![0, 1]
        );
    }

    #[test]
    fn rbf_svm_solves_xor_and_dual_cd_matches_the_hinge_optimum() {
        let x = [0.0f64, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let y = [0usize, 1, 1, 0];
        let m = KernelSvm::default()
            .gamma(Some(2.0))
            .c(10.0)
            .fit(MatRef::new(&x, 4, 2).unwrap(), &y)
            .unwrap();
        assert_eq!(
            m.predict(MatRef::new(&x, 4, 2).unwrap()).unwrap(),
            y.to_vec()
        );
        // Linear SVM, 1-D points -2, -1 (class 0) and 1, 2 (class 1), augmented with
        // a bias column of 1: the optimum is w = 1, b = 0 (margin points -1, 1).
        let x1 = [-2.0f64, -1.0, 1.0, 2.0];
        let l = LinearSvm::default()
            .loss(Loss::Hinge)
            .c(10.0)
            .tol(1e-10)
            .max_iter(100_000)
            .fit(MatRef::new(&x1, 4, 1).unwrap(), &[0, 0, 1, 1])
            .unwrap();
        let w = l.linear.map.weights[1];
        let b = l.linear.map.intercept[1];
        assert!((w - 1.0).abs() < 1e-6 && b.abs() < 1e-6, "w {w} b {b}");
    }
}
