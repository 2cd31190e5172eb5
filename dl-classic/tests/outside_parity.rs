//! Parity with outside libraries for the methods scikit-learn lacks: hidden Markov
//! models against hmmlearn, LOESS against statsmodels' `lowess`, kernel density
//! against scikit-learn's `KernelDensity` and statsmodels' `KDEUnivariate`,
//! Nadaraya-Watson against statsmodels' `KernelReg`. The peers' outputs come from
//! `tests/reference/outside_reference.py` through `outside_reference.txt`, which
//! also holds the inputs.

use dl_classic::hmm::{BaumWelch, Emission, Hmm, Observations};
use dl_classic::kde::{Bandwidth, Kde};
use dl_classic::kernel_regression::NadarayaWatson;
use dl_classic::loess::Loess;
use dl_core::{Fit, MatRef, Predict};
use std::collections::HashMap;

/// Baum-Welch iterations the script recorded (one hmmlearn fit per count).
const EM_ITERS: usize = 15;

struct Reference(HashMap<String, Vec<f64>>);

impl Reference {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference/outside_reference.txt"
        );
        let text = std::fs::read_to_string(path).expect("outside_reference.txt");
        let mut map = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut it = line.split(' ');
            let name = it.next().unwrap().to_string();
            let v = it.map(|s| s.parse::<f64>().expect(&name)).collect();
            map.insert(name, v);
        }
        Reference(map)
    }
    fn get(&self, name: &str) -> &[f64] {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from outside_reference.txt"))
    }
    fn symbols(&self, name: &str) -> Vec<usize> {
        self.get(name).iter().map(|&v| v as usize).collect()
    }
}

/// Largest `|a - b| / max(|b|, 1)`: relative for large values (log-likelihoods in
/// the hundreds), absolute for probabilities and values near zero.
fn max_err(ours: &[f64], theirs: &[f64]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "lengths differ");
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0, f64::max)
}

fn check(what: &str, ours: &[f64], theirs: &[f64], tol: f64) {
    let e = max_err(ours, theirs);
    println!("{what}: max error {e:.2e}");
    assert!(
        e <= tol,
        "{what}: error {e:e} > {tol:e}\nours   {ours:?}\ntheirs {theirs:?}"
    );
}

fn discrete_model(r: &Reference, prefix: &str) -> Hmm<f64> {
    Hmm::discrete(
        r.get(&format!("{prefix}_start")).to_vec(),
        r.get(&format!("{prefix}_trans")).to_vec(),
        r.get(&format!("{prefix}_emit")).to_vec(),
        4,
    )
    .unwrap()
}

fn gaussian_model(r: &Reference, prefix: &str) -> Hmm<f64> {
    Hmm::gaussian(
        r.get(&format!("{prefix}_start")).to_vec(),
        r.get(&format!("{prefix}_trans")).to_vec(),
        r.get(&format!("{prefix}_means")).to_vec(),
        r.get(&format!("{prefix}_vars")).to_vec(),
        2,
    )
    .unwrap()
}

fn rows2(v: &[f64]) -> MatRef<'_, f64> {
    MatRef::new(v, v.len() / 2, 2).unwrap()
}

/// Forward log-likelihood, posteriors and the Viterbi path with its log-probability
/// of one sequence against hmmlearn's `score`, `predict_proba` and `decode`.
fn check_inference(r: &Reference, hmm: &Hmm<f64>, obs: Observations<'_, f64>, name: &str) {
    // Both sides run the same recursions in f64 (hmmlearn in log space, ours
    // rescaled); only rounding differs, a few ulps per step over <= 800 steps
    // (measured <= 2e-14).
    let tol = 1e-12;
    let ll = hmm.log_likelihood(obs).unwrap();
    check(
        &format!("{name} score"),
        &[ll],
        r.get(&format!("{name}_score")),
        tol,
    );
    if let Some(post) = r.0.get(&format!("{name}_posteriors")) {
        check(
            &format!("{name} posteriors"),
            &hmm.posteriors(obs).unwrap(),
            post,
            tol,
        );
    }
    let (path, logp) = hmm.viterbi(obs).unwrap();
    assert_eq!(
        path,
        r.symbols(&format!("{name}_viterbi_path")),
        "{name} Viterbi path"
    );
    check(
        &format!("{name} Viterbi log-probability"),
        &[logp],
        r.get(&format!("{name}_viterbi_logp")),
        tol,
    );
}

#[test]
fn discrete_hmm_inference_matches_hmmlearn() {
    let r = Reference::load();
    let hmm = discrete_model(&r, "disc");
    for s in 0..3 {
        let seq = r.symbols(&format!("disc_seq{s}"));
        check_inference(
            &r,
            &hmm,
            Observations::Symbols(&seq),
            &format!("disc_seq{s}"),
        );
    }
    // 800 steps, p(o) ~ e^-964: only a rescaled (or log-space) forward pass survives.
    let long = r.symbols("disc_long");
    check_inference(&r, &hmm, Observations::Symbols(&long), "disc_long");
}

#[test]
fn gaussian_hmm_inference_matches_hmmlearn() {
    let r = Reference::load();
    let hmm = gaussian_model(&r, "gauss");
    for s in 0..2 {
        let x = r.get(&format!("gauss_seq{s}"));
        check_inference(
            &r,
            &hmm,
            Observations::Vectors(rows2(x)),
            &format!("gauss_seq{s}"),
        );
    }
}

/// EM settings that run exactly `k` iterations: `tol = 0` never stops early
/// (ours stops on `|delta| < tol`), and the variance floor is as small as
/// `validate` allows, because hmmlearn's M-step (with `covars_prior = 0`) has none.
fn em(k: usize) -> BaumWelch {
    BaumWelch {
        n_states: 3,
        max_iter: k,
        tol: 0.0,
        min_var: f64::MIN_POSITIVE,
        seed: 0,
    }
}

// EM tolerance: each iteration is the same closed-form update on both sides, so
// the difference is rounding (about 1e-15 per iteration) carried forward; EM
// contracts towards its fixed point, so it does not grow (measured <= 5e-14 over
// 15 iterations). 1e-11 leaves room for another platform's libm while any wrong
// term (a prior, a variance floor, a skipped sequence) shows at 1e-3 or more.
const EM_TOL: f64 = 1e-11;

#[test]
fn discrete_baum_welch_matches_hmmlearn_iteration_by_iteration() {
    let r = Reference::load();
    let init = discrete_model(&r, "disc_init");
    let seqs: Vec<Vec<usize>> = (0..3).map(|s| r.symbols(&format!("disc_seq{s}"))).collect();
    let obs: Vec<Observations<'_, f64>> = seqs.iter().map(|s| Observations::Symbols(s)).collect();
    for k in 1..=EM_ITERS {
        let fit = em(k).fit_from(init.clone(), &obs).unwrap();
        assert_eq!(fit.n_iter, k);
        let Emission::Discrete { probs, .. } = &fit.hmm.emission else {
            unreachable!()
        };
        let p = format!("disc_em{k}");
        check(
            &format!("{p} start"),
            &fit.hmm.start,
            r.get(&format!("{p}_start")),
            EM_TOL,
        );
        check(
            &format!("{p} trans"),
            &fit.hmm.trans,
            r.get(&format!("{p}_trans")),
            EM_TOL,
        );
        check(
            &format!("{p} emit"),
            probs,
            r.get(&format!("{p}_emit")),
            EM_TOL,
        );
        // Both report the log-likelihood of the E-step of iteration k.
        check(
            &format!("{p} ll"),
            &[fit.log_likelihood],
            r.get(&format!("{p}_ll")),
            EM_TOL,
        );
    }
}

#[test]
fn gaussian_baum_welch_matches_hmmlearn_iteration_by_iteration() {
    let r = Reference::load();
    let init = gaussian_model(&r, "gauss_init");
    let obs: Vec<Observations<'_, f64>> = (0..2)
        .map(|s| Observations::Vectors(rows2(r.get(&format!("gauss_seq{s}")))))
        .collect();
    for k in 1..=EM_ITERS {
        let fit = em(k).fit_from(init.clone(), &obs).unwrap();
        assert_eq!(fit.n_iter, k);
        let Emission::Gaussian { means, vars, .. } = &fit.hmm.emission else {
            unreachable!()
        };
        let p = format!("gauss_em{k}");
        check(
            &format!("{p} start"),
            &fit.hmm.start,
            r.get(&format!("{p}_start")),
            EM_TOL,
        );
        check(
            &format!("{p} trans"),
            &fit.hmm.trans,
            r.get(&format!("{p}_trans")),
            EM_TOL,
        );
        check(
            &format!("{p} means"),
            means,
            r.get(&format!("{p}_means")),
            EM_TOL,
        );
        // Ours computes E[x^2] - mu^2, hmmlearn the same sum expanded around mu;
        // the cancellation costs a few digits when a variance is small against
        // mu^2, still far below the tolerance here (variances ~0.3-1.5, |mu| < 5).
        check(
            &format!("{p} vars"),
            vars,
            r.get(&format!("{p}_vars")),
            EM_TOL,
        );
        check(
            &format!("{p} ll"),
            &[fit.log_likelihood],
            r.get(&format!("{p}_ll")),
            EM_TOL,
        );
    }
}

#[test]
fn loess_matches_statsmodels_lowess() {
    let r = Reference::load();
    let (x, y, grid) = (r.get("loess_x"), r.get("loess_y"), r.get("loess_grid"));
    let xm = MatRef::new(x, x.len(), 1).unwrap();
    let gm = MatRef::new(grid, grid.len(), 1).unwrap();
    for (frac, tag) in [(0.25, "f25"), (0.33, "f33"), (0.5, "f50")] {
        for it in [0usize, 3] {
            let m = Loess::new(frac).robust_iters(it).fit(xm, y).unwrap();
            let name = format!("loess_{tag}_it{it}");
            // A weighted line in closed form (statsmodels) or by normal equations
            // (ours) from the same weights: rounding only. Our neighbourhood radius
            // is widened by 1e-10 relative, which moves tricube weights by ~1e-10
            // times their slope; the k-th neighbour keeps a weight of ~1e-29.
            // Robust iterations feed the fits back through the median of the
            // residuals, which keeps the error at the same order (measured
            // <= 1.3e-10). A neighbourhood one point off shows at 1e-2.
            let tol = 1e-9;
            check(
                &format!("{name} at the data"),
                &m.predict(xm).unwrap(),
                r.get(&format!("{name}_train")),
                tol,
            );
            check(
                &format!("{name} on a grid"),
                &m.predict(gm).unwrap(),
                r.get(&format!("{name}_grid")),
                tol,
            );
        }
    }
}

#[test]
fn kde_matches_scikit_learn_and_statsmodels() {
    let r = Reference::load();
    let (x, q) = (r.get("kde_x"), r.get("kde_q"));
    let xm = MatRef::new(x, x.len() / 3, 3).unwrap();
    let qm = MatRef::new(q, q.len() / 3, 3).unwrap();
    // Same closed form; scikit-learn sums over its KD-tree nodes with rtol = atol = 0
    // (exact), in another order. The far query's log density is ~ -100, so the
    // relative error is what matters there (measured <= 1.5e-15).
    let tol = 1e-12;
    for (bw, name) in [
        (Bandwidth::Fixed(0.7), "kde_0.7_logp"),
        (Bandwidth::Scott, "kde_scott_logp"),
        (Bandwidth::Silverman, "kde_silverman_logp"),
    ] {
        let k = Kde::new(bw).fit(xm, &[]).unwrap();
        check(name, &k.score_samples(qm).unwrap(), r.get(name), tol);
    }
    let (x1, q1) = (r.get("kde1_x"), r.get("kde1_q"));
    let k = Kde::new(Bandwidth::Fixed(0.45))
        .fit(MatRef::new(x1, x1.len(), 1).unwrap(), &[])
        .unwrap();
    let ours = k
        .score_samples(MatRef::new(q1, q1.len(), 1).unwrap())
        .unwrap();
    // statsmodels returns the density; the script takes its log. Direct sum, same
    // tolerance.
    check("kde1 vs statsmodels", &ours, r.get("kde1_sm_logp"), tol);
    check("kde1 vs scikit-learn", &ours, r.get("kde1_sk_logp"), tol);
}

#[test]
fn nadaraya_watson_matches_statsmodels_kernel_reg() {
    let r = Reference::load();
    let (x, y, q) = (r.get("nw_x"), r.get("nw_y"), r.get("nw_q"));
    // A ratio of two sums of the same exponentials; ours shifts the exponents by
    // the nearest distance (cancels in the ratio), statsmodels multiplies per-axis
    // kernels with their 1/sqrt(2 pi) h factors (also cancel). Rounding only
    // (measured <= 5e-16).
    let tol = 1e-12;
    for (h, name) in [(0.3, "nw_h0.3_pred"), (1.2, "nw_h1.2_pred")] {
        let m = NadarayaWatson::new(h).fit(rows2(x), y).unwrap();
        check(name, &m.predict(rows2(q)).unwrap(), r.get(name), tol);
    }
    let x1: Vec<f64> = x.chunks(2).map(|p| p[0]).collect();
    let q1: Vec<f64> = q.chunks(2).map(|p| p[0]).collect();
    let m = NadarayaWatson::new(0.5)
        .fit(MatRef::new(&x1, x1.len(), 1).unwrap(), y)
        .unwrap();
    check(
        "nw1",
        &m.predict(MatRef::new(&q1, q1.len(), 1).unwrap()).unwrap(),
        r.get("nw1_pred"),
        tol,
    );
}
