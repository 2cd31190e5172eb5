//! Bad input gets a named error, never a panic: one test per rule.

use dl_classic::gda::{Lda, Qda};
use dl_classic::knn::KNeighborsClassifier;
use dl_classic::linear::{LeastSquaresClassifier, LinearRegression, Perceptron};
use dl_classic::logistic::LogisticRegression;
use dl_classic::naive_bayes::{BernoulliNb, GaussianNb, MultinomialNb};
use dl_classic::Error;
use dl_core::{Fit, MatRef, Predict};

const X: [f64; 8] = [0.0, 1.0, 1.0, 0.0, 5.0, 5.0, 6.0, 5.0];
const Y: [usize; 4] = [0, 0, 1, 1];

fn m(x: &[f64], r: usize, c: usize) -> MatRef<'_, f64> {
    MatRef::new(x, r, c).unwrap()
}

/// Runs `f` on every classifier (boxed as a closure over fit).
fn all_classifiers(x: MatRef<'_, f64>, y: &[usize]) -> Vec<(&'static str, Result<(), Error>)> {
    fn run<F: Fit<f64, usize, Error = Error>>(
        f: F,
        x: MatRef<'_, f64>,
        y: &[usize],
    ) -> Result<(), Error> {
        f.fit(x, y).map(|_| ())
    }
    vec![
        ("knn", run(KNeighborsClassifier::new(1), x, y)),
        (
            "least_squares",
            run(LeastSquaresClassifier::default(), x, y),
        ),
        ("perceptron", run(Perceptron::default(), x, y)),
        ("logistic", run(LogisticRegression::default(), x, y)),
        ("gaussian_nb", run(GaussianNb::default(), x, y)),
        ("multinomial_nb", run(MultinomialNb::default(), x, y)),
        ("bernoulli_nb", run(BernoulliNb::default(), x, y)),
        ("lda", run(Lda::default(), x, y)),
        ("qda", run(Qda::default(), x, y)),
    ]
}

#[test]
fn empty_data_is_rejected_by_every_classifier() {
    for (name, r) in all_classifiers(m(&[], 0, 2), &[]) {
        assert!(matches!(r, Err(Error::EmptyData { .. })), "{name}: {r:?}");
    }
}

#[test]
fn mismatched_lengths_are_rejected_by_every_classifier() {
    for (name, r) in all_classifiers(m(&X, 4, 2), &Y[..3]) {
        assert_eq!(
            r,
            Err(Error::LengthMismatch {
                x_rows: 4,
                y_len: 3
            }),
            "{name}"
        );
    }
}

#[test]
fn nan_features_are_rejected_by_every_classifier_with_their_position() {
    let mut x = X;
    x[5] = f64::NAN;
    for (name, r) in all_classifiers(m(&x, 4, 2), &Y) {
        assert_eq!(r, Err(Error::NonFinite { row: 2, col: 1 }), "{name}");
    }
    // Also at predict time.
    let model = KNeighborsClassifier::new(1).fit(m(&X, 4, 2), &Y).unwrap();
    assert_eq!(
        model.predict(m(&[0.0, f64::INFINITY], 1, 2)),
        Err(Error::NonFinite { row: 0, col: 1 })
    );
}

#[test]
fn more_neighbours_than_samples_is_too_few_samples() {
    let r = KNeighborsClassifier::new(5).fit(m(&X, 4, 2), &Y);
    assert_eq!(r.err(), Some(Error::TooFewSamples { k: 5, n: 4 }));
}

#[test]
fn wrong_feature_count_at_predict_is_named() {
    let model = LogisticRegression::default().fit(m(&X, 4, 2), &Y).unwrap();
    assert_eq!(
        model.predict(m(&[1.0, 2.0, 3.0], 1, 3)),
        Err(Error::FeatureMismatch {
            op: "LinearClassifier::predict",
            expected: 2,
            actual: 3
        })
    );
}

#[test]
fn singular_covariance_names_the_regularization() {
    // Feature 1 = 2 * feature 0 in every class: each class covariance is rank 1.
    let x = [
        0.0, 0.0, 1.0, 2.0, 2.0, 4.0, 5.0, 10.0, 6.0, 12.0, 7.0, 14.0,
    ];
    let y = [0, 0, 0, 1, 1, 1];
    match Qda::default().fit(m(&x, 6, 2), &y) {
        Err(Error::Singular { what, hint }) => {
            assert_eq!(what, "class covariance");
            assert!(hint.contains("reg_param"), "{hint}");
        }
        other => panic!("expected Singular, got {other:?}"),
    }
    // Regularization fixes it.
    assert!(Qda::default().reg_param(0.1).fit(m(&x, 6, 2), &y).is_ok());
    // Ordinary least squares on collinear features names alpha.
    let t = [0.0, 1.0, 2.0, 5.0, 6.0, 7.0];
    match LinearRegression::default().fit(m(&x, 6, 2), &t) {
        Err(Error::Singular { hint, .. }) => assert!(hint.contains("alpha"), "{hint}"),
        other => panic!("expected Singular, got {other:?}"),
    }
    assert!(LinearRegression::default()
        .alpha(1e-3)
        .fit(m(&x, 6, 2), &t)
        .is_ok());
}

#[test]
fn invalid_hyper_parameters_name_themselves() {
    let cases: Vec<(Result<(), Error>, &str)> = vec![
        (KNeighborsClassifier::new(0).validate(), "n_neighbors"),
        (
            LeastSquaresClassifier::default().alpha(-1.0).validate(),
            "alpha",
        ),
        (Perceptron::default().eta(0.0).validate(), "eta"),
        (LogisticRegression::default().c(0.0).validate(), "C"),
        (LogisticRegression::default().tol(-1.0).validate(), "tol"),
        (
            GaussianNb::default().var_smoothing(-1.0).validate(),
            "var_smoothing",
        ),
        (MultinomialNb::default().alpha(0.0).validate(), "alpha"),
        (BernoulliNb::default().alpha(-2.0).validate(), "alpha"),
        (Lda::default().tol(-1.0).validate(), "tol"),
        (Qda::default().reg_param(1.5).validate(), "reg_param"),
    ];
    for (r, want) in cases {
        match r {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, want),
            other => panic!("{want}: expected InvalidParameter, got {other:?}"),
        }
    }
    // fit runs validate first.
    let r = LogisticRegression::default().c(-1.0).fit(m(&X, 4, 2), &Y);
    assert!(matches!(r, Err(Error::InvalidParameter { name: "C", .. })));
}

#[test]
fn single_class_and_negative_counts_are_named() {
    let r = LogisticRegression::default().fit(m(&X, 4, 2), &[1, 1, 1, 1]);
    assert!(matches!(r, Err(Error::SingleClass { .. })));
    let r = MultinomialNb::default().fit(m(&[1.0, -1.0], 1, 2), &[0]);
    assert!(matches!(r, Err(Error::InvalidValue { row: 0, col: 1, .. })));
}

#[test]
fn unsupervised_methods_reject_bad_input() {
    use dl_classic::factor_analysis::FactorAnalysis;
    use dl_classic::gmm::GaussianMixture;
    use dl_classic::kde::{Bandwidth, Kde};
    use dl_classic::kmeans::KMeans;
    use dl_classic::mean_shift::MeanShift;
    use dl_classic::pca::Pca;
    use dl_classic::spectral::SpectralClustering;
    let empty = m(&[], 0, 3);
    assert!(matches!(
        Pca::default().fit(empty, &[]),
        Err(Error::EmptyData { .. })
    ));
    assert!(matches!(
        KMeans::new(2).fit(empty, &[]),
        Err(Error::EmptyData { .. })
    ));
    assert!(matches!(
        GaussianMixture::new(2).fit(empty, &[]),
        Err(Error::EmptyData { .. })
    ));
    assert!(matches!(
        MeanShift::new(1.0).fit(empty, &[]),
        Err(Error::EmptyData { .. })
    ));
    assert!(matches!(
        Kde::new(Bandwidth::Scott).fit(empty, &[]),
        Err(Error::EmptyData { .. })
    ));
    // More clusters / components than samples.
    assert_eq!(
        KMeans::new(5).fit(m(&X, 4, 2), &[]).err(),
        Some(Error::TooFewSamples { k: 5, n: 4 })
    );
    assert_eq!(
        GaussianMixture::new(5).fit(m(&X, 4, 2), &[]).err(),
        Some(Error::TooFewSamples { k: 5, n: 4 })
    );
    assert_eq!(
        SpectralClustering::new(5).fit(m(&X, 4, 2), &[]).err(),
        Some(Error::TooFewSamples { k: 5, n: 4 })
    );
    assert!(matches!(
        Pca::new(3).fit(m(&X, 4, 2), &[]),
        Err(Error::InvalidParameter {
            name: "n_components",
            ..
        })
    ));
    assert!(matches!(
        FactorAnalysis::new(3).fit(m(&X, 4, 2), &[]),
        Err(Error::InvalidParameter {
            name: "n_components",
            ..
        })
    ));
    // NaN.
    let mut x = X;
    x[3] = f64::NAN;
    assert_eq!(
        KMeans::new(2).fit(m(&x, 4, 2), &[]).err(),
        Some(Error::NonFinite { row: 1, col: 1 })
    );
    assert_eq!(
        Pca::default().fit(m(&x, 4, 2), &[]).err(),
        Some(Error::NonFinite { row: 1, col: 1 })
    );
    // A y of the wrong length.
    assert_eq!(
        Pca::default().fit(m(&X, 4, 2), &[(); 3]).err(),
        Some(Error::LengthMismatch {
            x_rows: 4,
            y_len: 3
        })
    );
}

#[test]
fn gmm_singular_covariance_names_reg_covar() {
    use dl_classic::gmm::GaussianMixture;
    // Two identical points per component: with reg_covar = 0 the covariances are 0.
    let x = [0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0];
    match GaussianMixture::new(2).reg_covar(0.0).fit(m(&x, 4, 2), &[]) {
        Err(Error::Singular { hint, .. }) => assert!(hint.contains("reg_covar"), "{hint}"),
        other => panic!("expected Singular, got {other:?}"),
    }
    assert!(GaussianMixture::new(2).fit(m(&x, 4, 2), &[]).is_ok());
}

#[test]
fn ensembles_svms_and_regressors_reject_bad_input() {
    use dl_classic::adaboost::AdaBoost;
    use dl_classic::bagging::Bagging;
    use dl_classic::forest::RandomForest;
    use dl_classic::gradient_boosting::{
        EarlyStopping, GradientBoosting, GradientBoostingRegressor, RegressionLoss,
    };
    use dl_classic::hist_gradient_boosting::HistGradientBoosting;
    use dl_classic::kernel_regression::NadarayaWatson;
    use dl_classic::loess::Loess;
    use dl_classic::svm::{KernelSvm, LinearSvm};
    use dl_classic::tree::DecisionTree;
    fn run<F: Fit<f64, usize, Error = Error>>(
        f: F,
        x: MatRef<'_, f64>,
        y: &[usize],
    ) -> Result<(), Error> {
        f.fit(x, y).map(|_| ())
    }
    let bad_len = m(&X, 4, 2);
    for r in [
        run(DecisionTree::default(), bad_len, &Y[..2]),
        run(RandomForest::new(3), bad_len, &Y[..2]),
        run(Bagging::new(3), bad_len, &Y[..2]),
        run(AdaBoost::new(3), bad_len, &Y[..2]),
        run(GradientBoosting::new(3), bad_len, &Y[..2]),
        run(HistGradientBoosting::new(3), bad_len, &Y[..2]),
        run(LinearSvm::default(), bad_len, &Y[..2]),
        run(KernelSvm::default(), bad_len, &Y[..2]),
    ] {
        assert_eq!(
            r,
            Err(Error::LengthMismatch {
                x_rows: 4,
                y_len: 2
            })
        );
    }
    let cases: Vec<(Result<(), Error>, &str)> = vec![
        (
            DecisionTree::default().min_samples_split(1).validate(),
            "min_samples_split",
        ),
        (
            DecisionTree::default().max_depth(Some(0)).validate(),
            "max_depth",
        ),
        (RandomForest::new(0).validate(), "n_estimators"),
        (
            RandomForest::new(5)
                .bootstrap(false)
                .oob_score(true)
                .validate(),
            "oob_score",
        ),
        (
            AdaBoost::new(5).learning_rate(0.0).validate(),
            "learning_rate",
        ),
        (GradientBoosting::new(0).validate(), "n_estimators"),
        (
            GradientBoosting::new(5).subsample(1.5).validate(),
            "subsample",
        ),
        (
            GradientBoosting::new(5)
                .tree(DecisionTree::default())
                .validate(),
            "tree.criterion",
        ),
        (
            GradientBoosting::new(5)
                .early_stopping(Some(EarlyStopping {
                    validation_fraction: 1.0,
                    ..Default::default()
                }))
                .validate(),
            "early_stopping.validation_fraction",
        ),
        (
            GradientBoosting::new(5)
                .early_stopping(Some(EarlyStopping {
                    n_iter_no_change: 0,
                    ..Default::default()
                }))
                .validate(),
            "early_stopping.n_iter_no_change",
        ),
        (
            GradientBoostingRegressor::default()
                .loss(RegressionLoss::Quantile { alpha: 1.0 })
                .validate(),
            "loss.alpha",
        ),
        (
            HistGradientBoosting::new(5).max_bins(256).validate(),
            "max_bins",
        ),
        (
            HistGradientBoosting::new(5).max_leaf_nodes(1).validate(),
            "max_leaf_nodes",
        ),
        (KernelSvm::default().gamma(Some(-1.0)).validate(), "gamma"),
        (LinearSvm::default().c(0.0).validate(), "C"),
        (NadarayaWatson::new(0.0).validate(), "bandwidth"),
        (Loess::new(1.5).validate(), "frac"),
    ];
    for (r, want) in cases {
        match r {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, want),
            other => panic!("{want}: expected InvalidParameter, got {other:?}"),
        }
    }
    let y = [0.0, 1.0, f64::NAN, 2.0];
    assert_eq!(
        NadarayaWatson::new(1.0).fit(m(&X, 4, 2), &y).err(),
        Some(Error::NonFinite { row: 2, col: 2 })
    );
    assert_eq!(
        GradientBoostingRegressor::default()
            .fit(m(&X, 4, 2), &y)
            .err(),
        Some(Error::NonFinite { row: 2, col: 2 })
    );
    // Squared-error boosting with a learning rate above 2 overshoots further every
    // stage (here by 1e10 a stage: the squared error passes f64's range by stage
    // 15); it must stop with an error, not return infinite predictions.
    let yr = [0.0, 1.0, 3.0, 2.0];
    let gb = GradientBoostingRegressor::new(GradientBoosting::new(50).learning_rate(1e10));
    let err = gb.fit(m(&X, 4, 2), &yr).err().unwrap();
    assert!(
        matches!(err, Error::Diverged { iteration, .. } if iteration > 10),
        "{err:?}"
    );
    assert!(err.to_string().contains("diverged"), "{err}");
}
