//! L-BFGS for the smooth convex losses of logistic regression (f64 internally, so
//! f32 models still reach the optimum scikit-learn's lbfgs reaches).

use alloc::vec;
use alloc::vec::Vec;

/// Outcome of a minimization.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minimum {
    /// Final loss.
    #[allow(dead_code)]
    pub loss: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether `max |grad| <= tol` was reached.
    pub converged: bool,
}

/// Iterations without progress in loss or gradient after which a nearly
/// converged run (`max |grad| <= 1000 tol`) is accepted.
const STALLS: usize = 5;

/// Minimizes `f` (which writes the gradient into its second argument and returns
/// the loss) from `w`, by L-BFGS with `m` correction pairs and a backtracking line
/// search on the Armijo condition (pairs with non-positive curvature are skipped).
/// Once the loss no longer changes beyond its rounding, a step is accepted when it
/// shrinks the gradient, so tolerances near the gradient's own rounding are
/// reachable (scikit-learn's `tol` 1e-12 on iris: gradient norm 1e-9 -> 1e-12).
pub(crate) fn lbfgs<F>(mut f: F, w: &mut [f64], m: usize, max_iter: usize, tol: f64) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = w.len();
    let mut g = vec![0.0; n];
    let mut loss = f(w, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut rho_hist: Vec<f64> = Vec::with_capacity(m);
    let mut dir = vec![0.0; n];
    let mut alpha = vec![0.0; m];
    let mut w_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let gmax = |g: &[f64]| g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut stalls = 0;
    for it in 0..max_iter {
        if gmax(&g) <= tol {
            return Minimum {
                loss,
                iterations: it,
                converged: true,
            };
        }
        // Two-loop recursion: dir = -H g.
        dir.copy_from_slice(&g);
        let k = s_hist.len();
        for j in (0..k).rev() {
            let a = rho_hist[j] * dot(&s_hist[j], &dir);
            alpha[j] = a;
            axpy(-a, &y_hist[j], &mut dir);
        }
        let gamma = if k > 0 {
            dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
        } else {
            1.0 / libm::sqrt(dot(&g, &g)).max(1e-300)
        };
        dir.iter_mut().for_each(|d| *d *= gamma);
        for j in 0..k {
            let b = rho_hist[j] * dot(&y_hist[j], &dir);
            axpy(alpha[j] - b, &s_hist[j], &mut dir);
        }
        dir.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot(&g, &dir);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
            for (d, gv) in dir.iter_mut().zip(&g) {
                *d = -gv;
            }
            slope = -dot(&g, &g);
        }
        let mut step = 1.0;
        let mut new_loss;
        let mut tries = 0;
        loop {
            for i in 0..n {
                w_new[i] = w[i] + step * dir[i];
            }
            new_loss = f(&w_new, &mut g_new);
            if new_loss <= loss + 1e-4 * step * slope || tries >= 60 {
                break;
            }
            // Near the optimum the decrease falls below the loss's rounding, so
            // the Armijo test is noise; there a smaller gradient is the only
            // evidence of progress (this is what lets tight tolerances converge).
            if (new_loss - loss).abs() <= 8.0 * f64::EPSILON * loss.abs()
                && dot(&g_new, &g_new) < dot(&g, &g)
            {
                break;
            }
            step *= 0.5;
            tries += 1;
        }
        if tries >= 60 || !new_loss.is_finite() {
            return Minimum {
                loss,
                iterations: it,
                converged: false,
            };
        }
        let s: Vec<f64> = (0..n).map(|i| w_new[i] - w[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        let gradient_shrank = dot(&g_new, &g_new) < dot(&g, &g);
        w.copy_from_slice(&w_new);
        g.copy_from_slice(&g_new);
        let improvement = loss - new_loss;
        loss = new_loss;
        if sy > 1e-12 * dot(&y, &y).max(1e-300) {
            if s_hist.len() == m {
                s_hist.remove(0);
                y_hist.remove(0);
                rho_hist.remove(0);
            }
            rho_hist.push(1.0 / sy);
            s_hist.push(s);
            y_hist.push(y);
        }
        // Stalled: neither the loss nor the gradient has improved for a few
        // iterations (one step may enlarge the gradient on the way down).
        if improvement.abs() <= f64::EPSILON * loss.abs().max(1.0) && !gradient_shrank {
            stalls += 1;
        } else {
            stalls = 0;
        }
        if stalls >= STALLS && gmax(&g) <= tol * 1e3 {
            return Minimum {
                loss,
                iterations: it + 1,
                converged: true,
            };
        }
    }
    Minimum {
        loss,
        iterations: max_iter,
        converged: gmax(&g) <= tol,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv += a * xv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_rosenbrock() {
        // f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum at (1, 1).
        let mut w = [-1.2, 1.0];
        let r = lbfgs(
            |w, g| {
                let (x, y) = (w[0], w[1]);
                g[0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
                g[1] = 200.0 * (y - x * x);
                (1.0 - x) * (1.0 - x) + 100.0 * (y - x * x) * (y - x * x)
            },
            &mut w,
            10,
            1000,
            1e-10,
        );
        assert!(r.converged, "{r:?}");
        assert!(
            (w[0] - 1.0).abs() < 1e-8 && (w[1] - 1.0).abs() < 1e-8,
            "{w:?}"
        );
    }
}
