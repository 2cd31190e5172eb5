//! Bayesian optimization on the Branin function, over 20 seeds: how many
//! evaluations it needs to come within 0.1 of the global minimum 0.397887, and how it
//! compares with random search on the same budget.

use dl_data::bayes::{random_minimize, BayesOpt};

/// Branin-Hoo on [-5, 10] x [0, 15]; global minimum 0.397887 at three points.
fn branin(x: &[f64]) -> f64 {
    let (x1, x2) = (x[0], x[1]);
    let pi = std::f64::consts::PI;
    let b = 5.1 / (4.0 * pi * pi);
    let c = 5.0 / pi;
    let t = 1.0 / (8.0 * pi);
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

const BOUNDS: [(f64, f64); 2] = [(-5.0, 10.0), (0.0, 15.0)];
const F_MIN: f64 = 0.397887;
/// Evaluations allowed: "fewer than 40".
const BUDGET: usize = 39;
const SEEDS: u64 = 20;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[test]
fn branin_function_minimum_is_as_documented() {
    for p in [
        [-std::f64::consts::PI, 12.275],
        [std::f64::consts::PI, 2.275],
        [9.42478, 2.475],
    ] {
        assert!((branin(&p) - F_MIN).abs() < 1e-5);
    }
}

#[test]
fn bayes_finds_branin_minimum_on_most_seeds_and_beats_random_search() {
    let mut needed = Vec::new();
    let (mut bo_best, mut rs_best) = (Vec::new(), Vec::new());
    for seed in 0..SEEDS {
        let opt = BayesOpt {
            n_evaluations: BUDGET,
            seed,
            ..Default::default()
        };
        let r = opt.minimize(&BOUNDS, branin).unwrap();
        // First evaluation (1-based) within 0.1 of the minimum, if any.
        let hit = r
            .best_so_far()
            .iter()
            .position(|&b| b - F_MIN < 0.1)
            .map(|i| i + 1);
        needed.push(hit);
        bo_best.push(r.best_y);
        rs_best.push(
            random_minimize(&BOUNDS, BUDGET, seed, branin)
                .unwrap()
                .best_y,
        );
    }
    let hits: Vec<usize> = needed.iter().flatten().copied().collect();
    println!(
        "evaluations to reach f < {:.6} + 0.1, per seed: {needed:?}",
        F_MIN
    );
    println!("BO best values: {bo_best:.4?}");
    println!("random best values: {rs_best:.4?}");
    let (bo_med, rs_med) = (median(&mut bo_best.clone()), median(&mut rs_best.clone()));
    println!(
        "successes {}/{SEEDS}; median BO best {bo_med:.5}, median random best {rs_med:.5}",
        hits.len()
    );
    // "Most seeds": at least 16 of 20 within 0.1 in fewer than 40 evaluations.
    assert!(
        hits.len() >= 16,
        "only {} of {SEEDS} seeds reached the minimum: {needed:?}",
        hits.len()
    );
    assert!(
        bo_med < rs_med,
        "BO median {bo_med} not below random median {rs_med}"
    );
    assert!(bo_med - F_MIN < 0.1);
}
