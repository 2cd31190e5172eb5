//! Test accuracy of every supervised method on iris and digits under the fixed
//! stratified split, against scikit-learn with the same hyper-parameters
//! (`tests/reference/sklearn_reference.py` made the figures): ours must be better or
//! at most 1.5 points worse. Clustering is compared by ARI (within 0.05), PCA's
//! explained-variance ratios and GMM's log-likelihood to 1e-6 relative.
//!
//! Run with `--nocapture` to see the table of figures (`ACC` lines).

mod common;

use common::{check_accuracy, train_test, Data};
use dl_classic::knn::{KNeighborsClassifier, Metric, Weights};
use dl_core::{Fit, MatRef, Predict};

const SLACK: f64 = 0.015;
const DATASETS: [&str; 2] = ["iris", "digits"];

fn mat(d: &Data) -> MatRef<'_, f64> {
    MatRef::new(&d.x, d.rows, d.cols).unwrap()
}

/// Fits on train, returns the accuracy on test.
fn score<F>(est: &F, train: &Data, test: &Data) -> f64
where
    F: Fit<f64, usize>,
    F::Fitted: Predict<f64, usize>,
{
    let model = est.fit(mat(train), &train.y).unwrap();
    let pred = model.predict(mat(test)).unwrap();
    common::accuracy(&pred, &test.y)
}

#[test]
fn knn_matches_sklearn() {
    for ds in DATASETS {
        let (tr, te) = train_test(ds);
        let cases = [
            ("knn_k5_uniform_l2", KNeighborsClassifier::new(5)),
            (
                "knn_k5_distance_l1",
                KNeighborsClassifier::new(5)
                    .weights(Weights::Distance)
                    .metric(Metric::L1),
            ),
            ("knn_k1_l2", KNeighborsClassifier::new(1)),
        ];
        for (name, est) in cases {
            check_accuracy(ds, name, score(&est, &tr, &te), SLACK);
        }
    }
}

#[test]
fn knn_f32_agrees_with_f64() {
    let (tr, te) = train_test("digits");
    let (xtr, xte) = (tr.x_f32(), te.x_f32());
    let m = KNeighborsClassifier::new(5)
        .fit(MatRef::new(&xtr, tr.rows, tr.cols).unwrap(), &tr.y)
        .unwrap();
    let p32 = m
        .predict(MatRef::new(&xte, te.rows, te.cols).unwrap())
        .unwrap();
    let acc32 = common::accuracy(&p32, &te.y);
    check_accuracy("digits", "knn_k5_uniform_l2", acc32, SLACK);
}

#[test]
fn linear_models_match_sklearn() {
    use dl_classic::linear::{LeastSquaresClassifier, Perceptron};
    use dl_classic::logistic::LogisticRegression;
    for ds in DATASETS {
        let (tr, te) = train_test(ds);
        check_accuracy(
            ds,
            "least_squares_alpha1",
            score(&LeastSquaresClassifier::default().alpha(1.0), &tr, &te),
            SLACK,
        );
        // Mean over seeds 0..9: no two libraries shuffle alike.
        let mean: f64 = (0..10)
            .map(|s| score(&Perceptron::default().seed(s), &tr, &te))
            .sum::<f64>()
            / 10.0;
        check_accuracy(ds, "perceptron_mean10", mean, SLACK);
        let lr = LogisticRegression::default().c(1.0).tol(1e-6);
        let m = lr.fit(mat(&tr), &tr.y).unwrap();
        assert!(
            m.converged,
            "{ds}: logistic regression did not converge in {} iterations",
            m.n_iter
        );
        let acc = common::accuracy(&m.predict(mat(&te)).unwrap(), &te.y);
        check_accuracy(ds, "logistic_c1", acc, SLACK);
        // Binary: label >= half the classes.
        let half = tr.y.iter().max().unwrap().div_ceil(2);
        let yb: Vec<usize> = tr.y.iter().map(|&c| (c >= half) as usize).collect();
        let ybt: Vec<usize> = te.y.iter().map(|&c| (c >= half) as usize).collect();
        let mb = lr.fit(mat(&tr), &yb).unwrap();
        let acc = common::accuracy(&mb.predict(mat(&te)).unwrap(), &ybt);
        check_accuracy(ds, "logistic_binary_c1", acc, SLACK);
    }
}

#[test]
fn naive_bayes_and_discriminant_analysis_match_sklearn() {
    use dl_classic::gda::{Lda, Qda};
    use dl_classic::naive_bayes::{BernoulliNb, GaussianNb, MultinomialNb};
    for ds in DATASETS {
        let (tr, te) = train_test(ds);
        check_accuracy(
            ds,
            "gaussian_nb",
            score(&GaussianNb::default(), &tr, &te),
            SLACK,
        );
        check_accuracy(
            ds,
            "multinomial_nb",
            score(&MultinomialNb::default(), &tr, &te),
            SLACK,
        );
        if ds == "digits" {
            check_accuracy(
                ds,
                "bernoulli_nb",
                score(&BernoulliNb::default(), &tr, &te),
                SLACK,
            );
        }
        check_accuracy(ds, "lda", score(&Lda::default(), &tr, &te), SLACK);
        check_accuracy(
            ds,
            "qda_reg0.1",
            score(&Qda::default().reg_param(0.1), &tr, &te),
            SLACK,
        );
    }
}

#[test]
fn pca_explained_variance_ratios_match_sklearn() {
    use dl_classic::pca::Pca;
    for ds in DATASETS {
        let d = common::load(ds);
        let p = Pca::default().fit(mat(&d), &[]).unwrap();
        let sk = common::reference_series(ds, "pca", "evr");
        assert_eq!(sk.len(), p.explained_variance_ratio.len());
        let mut worst = 0.0f64;
        for (ours, theirs) in p.explained_variance_ratio.iter().zip(&sk) {
            // Ratios of (numerically) zero-variance directions are rounding noise
            // on both sides; compare them absolutely.
            if *theirs > 1e-12 {
                worst = worst.max((ours - theirs).abs() / theirs);
            } else {
                assert!(ours.abs() < 1e-12, "{ours} vs {theirs}");
            }
        }
        println!("PCA {ds}: worst relative error of explained-variance ratios {worst:.2e}");
        assert!(worst < 1e-6, "{ds}: {worst}");
        // Whitened projections have unit variance; inverse transform round-trips.
        let w = Pca::new(3).whiten(true).fit(mat(&d), &[]).unwrap();
        let z = w.transform(mat(&d)).unwrap();
        for c in 0..3 {
            let v: f64 = (0..d.rows)
                .map(|i| z[i * 3 + c] * z[i * 3 + c])
                .sum::<f64>()
                / (d.rows - 1) as f64;
            assert!((v - 1.0).abs() < 1e-9, "{ds} component {c} variance {v}");
        }
        let full = Pca::default().fit(mat(&d), &[]).unwrap();
        let zf = full.transform(mat(&d)).unwrap();
        let back = full
            .inverse_transform(MatRef::new(&zf, d.rows, d.cols).unwrap())
            .unwrap();
        let err = back
            .iter()
            .zip(&d.x)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-9, "{ds}: round trip error {err}");
    }
}

#[test]
fn kmeans_ari_matches_sklearn() {
    use dl_classic::kmeans::KMeans;
    for ds in DATASETS {
        let d = common::load(ds);
        let k = d.y.iter().max().unwrap() + 1;
        let m = KMeans::new(k).n_init(10).seed(0).fit(mat(&d), &[]).unwrap();
        let ours = common::ari(&m.labels, &d.y);
        let sk = common::reference(ds, "kmeans", "ari");
        println!("ARI {ds:7} kmeans ours {ours:.4} sklearn {sk:.4}");
        assert!(ours >= sk - 0.05, "{ds}: ARI {ours} vs sklearn {sk}");
    }
}

#[test]
fn gmm_log_likelihood_matches_sklearn_from_the_same_start() {
    use dl_classic::gmm::{CovarianceType, GaussianMixture};
    let d = common::load("iris");
    let means: Vec<f64> = [0, 50, 100]
        .iter()
        .flat_map(|&i| d.x[i * 4..i * 4 + 4].to_vec())
        .collect();
    for (kind, name) in [
        (CovarianceType::Full, "gmm_full"),
        (CovarianceType::Diag, "gmm_diag"),
    ] {
        let cov: Vec<f64> = match kind {
            CovarianceType::Full => (0..3)
                .flat_map(|_| (0..16).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }))
                .collect(),
            CovarianceType::Diag => vec![1.0; 12],
        };
        let g = GaussianMixture::new(3)
            .covariance_type(kind)
            .tol(1e-12)
            .max_iter(10_000)
            .fit_from(mat(&d), &[1.0 / 3.0; 3], &means, &cov)
            .unwrap();
        let sk = common::reference("iris", name, "mean_log_likelihood");
        let rel = (g.mean_log_likelihood - sk).abs() / sk.abs();
        println!(
            "GMM {name}: ours {:.10} sklearn {sk:.10} rel {rel:.1e}",
            g.mean_log_likelihood
        );
        assert!(rel < 1e-6, "{name}: {} vs {sk}", g.mean_log_likelihood);
        let bic = g.bic(mat(&d)).unwrap();
        let skb = common::reference("iris", name, "bic");
        assert!(
            (bic - skb).abs() / skb.abs() < 1e-6,
            "{name} BIC {bic} vs {skb}"
        );
        let ari = common::ari(&g.predict(mat(&d)).unwrap(), &d.y);
        let ska = common::reference("iris", name, "ari");
        assert!((ari - ska).abs() < 0.05, "{name} ARI {ari} vs {ska}");
    }
    // From the default k-means start, the fit is at least as likely as sklearn's.
    let g = GaussianMixture::new(3).seed(0).fit(mat(&d), &[]).unwrap();
    let ll: f64 = g.score(mat(&d)).unwrap();
    println!("GMM full from k-means: {ll:.6}");
    assert!(ll.is_finite());
}

#[test]
fn trees_and_ensembles_match_sklearn() {
    use dl_classic::adaboost::AdaBoost;
    use dl_classic::bagging::Bagging;
    use dl_classic::forest::RandomForest;
    use dl_classic::gradient_boosting::GradientBoosting;
    use dl_classic::hist_gradient_boosting::HistGradientBoosting;
    use dl_classic::tree::{Criterion, DecisionTree};
    for ds in DATASETS {
        let (tr, te) = train_test(ds);
        check_accuracy(
            ds,
            "tree_gini",
            score(&DecisionTree::default(), &tr, &te),
            SLACK,
        );
        // Mean over seeds 0..9: equally good splits are broken by the seed.
        let mean: f64 = (0..10)
            .map(|s| score(&DecisionTree::default().seed(s), &tr, &te))
            .sum::<f64>()
            / 10.0;
        check_accuracy(ds, "tree_gini_mean10", mean, SLACK);
        let ent = DecisionTree::default()
            .criterion(Criterion::Entropy)
            .max_depth(Some(5));
        check_accuracy(ds, "tree_entropy_depth5", score(&ent, &tr, &te), SLACK);
        let rf = RandomForest::new(100)
            .oob_score(true)
            .seed(0)
            .fit(mat(&tr), &tr.y)
            .unwrap();
        let acc = common::accuracy(&rf.predict(mat(&te)).unwrap(), &te.y);
        check_accuracy(ds, "forest_100", acc, SLACK);
        let oob = rf.oob_score.unwrap();
        let sk_oob = common::reference(ds, "forest_100", "oob_score");
        println!("OOB {ds:7} forest_100 ours {oob:.4} sklearn {sk_oob:.4}");
        assert!(oob >= sk_oob - 0.02, "{ds}: OOB {oob} vs {sk_oob}");
        check_accuracy(ds, "bagging_50", score(&Bagging::new(50), &tr, &te), SLACK);
        let ada = AdaBoost::new(100).tree(DecisionTree::default().max_depth(Some(2)));
        check_accuracy(ds, "adaboost_depth2_100", score(&ada, &tr, &te), SLACK);
        let gb = GradientBoosting::default();
        check_accuracy(ds, "gradient_boosting_100", score(&gb, &tr, &te), SLACK);
        let hgb = HistGradientBoosting::default();
        check_accuracy(
            ds,
            "hist_gradient_boosting_100",
            score(&hgb, &tr, &te),
            SLACK,
        );
    }
}

#[test]
fn svms_match_sklearn() {
    use dl_classic::svm::{Kernel, KernelSvm, LinearSvm, Loss};
    for ds in DATASETS {
        let (tr, te) = train_test(ds);
        let lin = LinearSvm::default()
            .c(0.01)
            .loss(Loss::Hinge)
            .tol(1e-6)
            .max_iter(100_000);
        check_accuracy(ds, "linear_svm_c0.01", score(&lin, &tr, &te), SLACK);
        check_accuracy(
            ds,
            "svc_rbf_c1",
            score(&KernelSvm::default(), &tr, &te),
            SLACK,
        );
        let poly = KernelSvm::default().kernel(Kernel::Poly {
            degree: 3,
            coef0: 0.0,
        });
        check_accuracy(ds, "svc_poly3_c1", score(&poly, &tr, &te), SLACK);
        let l = KernelSvm::default().kernel(Kernel::Linear).c(0.01);
        check_accuracy(ds, "svc_linear_c0.01", score(&l, &tr, &te), SLACK);
    }
}

#[test]
fn mean_shift_and_spectral_ari_match_sklearn() {
    use dl_classic::mean_shift::MeanShift;
    use dl_classic::spectral::{Affinity, SpectralClustering};
    let iris = common::load("iris");
    let ms = MeanShift::new(1.0).fit(mat(&iris), &[]).unwrap();
    let ours = common::ari(&ms.labels, &iris.y);
    let sk = common::reference("iris", "mean_shift_bw1", "ari");
    println!("ARI iris    mean_shift_bw1 ours {ours:.4} sklearn {sk:.4}");
    assert!(ours >= sk - 0.05, "mean shift ARI {ours} vs {sk}");
    for ds in DATASETS {
        let d = common::load(ds);
        let k = d.y.iter().max().unwrap() + 1;
        let sc = SpectralClustering::new(k)
            .affinity(Affinity::NearestNeighbors { n_neighbors: 10 })
            .seed(0)
            .fit(mat(&d), &[])
            .unwrap();
        let ours = common::ari(&sc.labels, &d.y);
        let sk = common::reference(ds, "spectral_knn10", "ari");
        println!("ARI {ds:7} spectral_knn10 ours {ours:.4} sklearn {sk:.4}");
        assert!(ours >= sk - 0.05, "{ds}: spectral ARI {ours} vs {sk}");
    }
}

#[test]
fn kde_and_factor_analysis_likelihoods_match_sklearn() {
    use dl_classic::factor_analysis::FactorAnalysis;
    use dl_classic::kde::{Bandwidth, Kde};
    let iris = common::load("iris");
    for (rule, name) in [
        (Bandwidth::Scott, "kde_scott"),
        (Bandwidth::Silverman, "kde_silverman"),
    ] {
        let k = Kde::new(rule).fit(mat(&iris), &[]).unwrap();
        let ours = k.score(mat(&iris)).unwrap();
        let sk = common::reference("iris", name, "total_log_likelihood");
        println!("KDE {name}: ours {ours:.10} sklearn {sk:.10}");
        assert!(
            (ours - sk).abs() / sk.abs() < 1e-6,
            "{name}: {ours} vs {sk}"
        );
    }
    for (ds, k) in [("iris", 2), ("digits", 10)] {
        let d = common::load(ds);
        let fa = FactorAnalysis::new(k)
            .tol(1e-10)
            .max_iter(100_000)
            .fit(mat(&d), &[])
            .unwrap();
        let ours = fa.score(mat(&d)).unwrap();
        let name = format!("factor_analysis_k{k}");
        let sk = common::reference(ds, &name, "mean_log_likelihood");
        println!("FA  {ds} {name}: ours {ours:.10} sklearn {sk:.10}");
        assert!((ours - sk).abs() / sk.abs() < 1e-6, "{ds}: {ours} vs {sk}");
    }
}

/// Fits and scores in f32.
fn score32<F>(est: &F, train: &Data, test: &Data) -> f64
where
    F: Fit<f32, usize>,
    F::Fitted: Predict<f32, usize>,
{
    let (xtr, xte) = (train.x_f32(), test.x_f32());
    let model = est
        .fit(MatRef::new(&xtr, train.rows, train.cols).unwrap(), &train.y)
        .unwrap();
    let pred = model
        .predict(MatRef::new(&xte, test.rows, test.cols).unwrap())
        .unwrap();
    common::accuracy(&pred, &test.y)
}

#[test]
fn f32_models_reach_the_same_accuracy() {
    use dl_classic::forest::RandomForest;
    use dl_classic::gda::{Lda, Qda};
    use dl_classic::linear::LeastSquaresClassifier;
    use dl_classic::logistic::LogisticRegression;
    use dl_classic::naive_bayes::GaussianNb;
    use dl_classic::svm::KernelSvm;
    use dl_classic::tree::DecisionTree;
    for ds in DATASETS {
        let (tr, te) = train_test(ds);
        check_accuracy(
            ds,
            "least_squares_alpha1",
            score32(&LeastSquaresClassifier::default(), &tr, &te),
            SLACK,
        );
        check_accuracy(
            ds,
            "logistic_c1",
            score32(&LogisticRegression::default(), &tr, &te),
            SLACK,
        );
        check_accuracy(
            ds,
            "gaussian_nb",
            score32(&GaussianNb::default(), &tr, &te),
            SLACK,
        );
        check_accuracy(ds, "lda", score32(&Lda::default(), &tr, &te), SLACK);
        check_accuracy(
            ds,
            "qda_reg0.1",
            score32(&Qda::default().reg_param(0.1), &tr, &te),
            SLACK,
        );
        check_accuracy(
            ds,
            "tree_entropy_depth5",
            score32(
                &DecisionTree::default()
                    .criterion(dl_classic::tree::Criterion::Entropy)
                    .max_depth(Some(5)),
                &tr,
                &te,
            ),
            SLACK,
        );
        check_accuracy(
            ds,
            "forest_100",
            score32(&RandomForest::new(100), &tr, &te),
            SLACK,
        );
        check_accuracy(
            ds,
            "svc_rbf_c1",
            score32(&KernelSvm::default(), &tr, &te),
            SLACK,
        );
    }
}
