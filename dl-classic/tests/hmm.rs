//! HMM: Baum-Welch recovers known models from 10,000 sampled observations.

use dl_classic::hmm::{BaumWelch, Hmm, Observations};
use dl_core::{MatRef, Rng};

/// Max abs difference after matching learned states to true ones (2 states: try
/// both labelings, since EM cannot know which state is "first").
fn max_err_2(trans: &[f64], true_trans: &[f64], emit: &[f64], true_emit: &[f64], m: usize) -> f64 {
    let mut best = f64::INFINITY;
    for perm in [[0usize, 1], [1, 0]] {
        let mut e = 0.0f64;
        for i in 0..2 {
            for j in 0..2 {
                e = e.max((trans[perm[i] * 2 + perm[j]] - true_trans[i * 2 + j]).abs());
            }
            for k in 0..m {
                e = e.max((emit[perm[i] * m + k] - true_emit[i * m + k]).abs());
            }
        }
        best = best.min(e);
    }
    best
}

#[test]
fn baum_welch_recovers_a_discrete_model() {
    let truth = Hmm::discrete(
        vec![0.5, 0.5],
        vec![0.8, 0.2, 0.3, 0.7],
        vec![0.7, 0.2, 0.1, 0.1, 0.3, 0.6],
        3,
    )
    .unwrap();
    let mut rng = Rng::seed_from_u64(2024);
    let (_, obs, _) = truth.sample(10_000, &mut rng);
    let fit = BaumWelch::new(2)
        .seed(1)
        .tol(1e-6)
        .max_iter(5000)
        .fit_discrete::<f64>(&[&obs], 3)
        .unwrap();
    assert!(fit.converged, "{} iterations", fit.n_iter);
    let dl_classic::hmm::Emission::Discrete { probs, .. } = &fit.hmm.emission else {
        panic!()
    };
    let err = max_err_2(
        &fit.hmm.trans,
        &truth.trans,
        probs,
        &[0.7, 0.2, 0.1, 0.1, 0.3, 0.6],
        3,
    );
    println!(
        "discrete Baum-Welch: max parameter error {err:.4} after {} iterations",
        fit.n_iter
    );
    assert!(err < 0.05, "max error {err}");
    // The fit explains the data at least as well as the true model.
    let l_true = truth.log_likelihood(Observations::Symbols(&obs)).unwrap();
    assert!(fit.log_likelihood >= l_true - 1e-6);
}

#[test]
fn baum_welch_recovers_a_gaussian_model() {
    let truth = Hmm::gaussian(
        vec![0.5, 0.5],
        vec![0.9, 0.1, 0.2, 0.8],
        vec![-1.0, 0.0, 2.0, 1.0],
        vec![1.0, 0.5, 0.5, 1.0],
        2,
    )
    .unwrap();
    let mut rng = Rng::seed_from_u64(7);
    let (_, _, x) = truth.sample(10_000, &mut rng);
    let fit = BaumWelch::new(2)
        .seed(3)
        .tol(1e-8)
        .fit_gaussian::<f64>(MatRef::new(&x, 10_000, 2).unwrap())
        .unwrap();
    let dl_classic::hmm::Emission::Gaussian { means, vars, .. } = &fit.hmm.emission else {
        panic!()
    };
    // Combine means and variances as the "emission" table for matching.
    let ours: Vec<f64> = (0..2)
        .flat_map(|i| [means[i * 2], means[i * 2 + 1], vars[i * 2], vars[i * 2 + 1]])
        .collect();
    let want = [-1.0, 0.0, 1.0, 0.5, 2.0, 1.0, 0.5, 1.0];
    let err = max_err_2(&fit.hmm.trans, &truth.trans, &ours, &want, 4);
    println!(
        "Gaussian Baum-Welch: max parameter error {err:.4} after {} iterations",
        fit.n_iter
    );
    assert!(err < 0.05, "max error {err}: {:?} {ours:?}", fit.hmm.trans);
}

#[test]
fn bad_hmm_input_is_named() {
    use dl_classic::Error;
    // Rows that are not distributions.
    let r = Hmm::<f64>::discrete(vec![0.5, 0.6], vec![1.0, 0.0, 0.0, 1.0], vec![1.0, 1.0], 1);
    assert!(matches!(
        r,
        Err(Error::InvalidParameter { name: "start", .. })
    ));
    let h = Hmm::<f64>::discrete(
        vec![1.0, 0.0],
        vec![1.0, 0.0, 0.0, 1.0],
        vec![1.0, 0.0, 0.0, 1.0],
        2,
    )
    .unwrap();
    // Symbol out of range, empty sequence, wrong observation kind.
    assert!(matches!(
        h.viterbi(Observations::Symbols(&[0, 2])),
        Err(Error::InvalidValue { row: 1, .. })
    ));
    assert!(matches!(
        h.log_likelihood(Observations::Symbols(&[])),
        Err(Error::EmptyData { .. })
    ));
    let x = [0.0f64, 1.0];
    assert!(matches!(
        h.viterbi(Observations::Vectors(MatRef::new(&x, 2, 1).unwrap())),
        Err(Error::InvalidParameter {
            name: "observations",
            ..
        })
    ));
}
