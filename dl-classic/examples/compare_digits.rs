//! Every supervised family of dl-classic on the bundled 8x8 digits, in one table:
//! test accuracy, fit time and predict time on a stratified 70/30 split, then the
//! clustering families scored by the adjusted Rand index against the true digits.
//!
//! Run: `cargo run --release -p dl-classic --example compare_digits`
//!
//! The features are the raw pixel counts (0..=16), as scikit-learn's `load_digits`
//! gives them; every model uses its defaults unless the row's name says otherwise.

use std::time::Instant;

use dl_classic::adaboost::AdaBoost;
use dl_classic::forest::RandomForest;
use dl_classic::gda::{Lda, Qda};
use dl_classic::gmm::{CovarianceType, GaussianMixture};
use dl_classic::gradient_boosting::GradientBoosting;
use dl_classic::hist_gradient_boosting::HistGradientBoosting;
use dl_classic::kmeans::KMeans;
use dl_classic::knn::KNeighborsClassifier;
use dl_classic::linear::{LeastSquaresClassifier, Perceptron};
use dl_classic::logistic::LogisticRegression;
use dl_classic::naive_bayes::{GaussianNb, MultinomialNb};
use dl_classic::spectral::{Affinity, SpectralClustering};
use dl_classic::svm::{Kernel, KernelSvm, LinearSvm};
use dl_classic::tree::DecisionTree;
use dl_core::{Fit, MatRef, Predict};
use dl_data::metrics::{accuracy, adjusted_rand_index};
use dl_data::split::SplitConfig;

type BoxError = Box<dyn std::error::Error>;

/// One row of the table: fits `est` on the training part, predicts the test part.
fn row<F>(
    name: &str,
    est: &F,
    train: (MatRef<'_, f64>, &[usize]),
    test: (MatRef<'_, f64>, &[usize]),
) where
    F: Fit<f64, usize>,
    F::Fitted: Predict<f64, usize>,
{
    let t0 = Instant::now();
    let model = match est.fit(train.0, train.1) {
        Ok(m) => m,
        Err(e) => {
            println!("{name:<28} fit failed: {e}");
            return;
        }
    };
    let fit = t0.elapsed();
    let t1 = Instant::now();
    let pred = match model.predict(test.0) {
        Ok(p) => p,
        Err(e) => {
            println!("{name:<28} predict failed: {e}");
            return;
        }
    };
    let predict = t1.elapsed();
    let acc = accuracy(test.1, &pred).unwrap_or(f64::NAN);
    println!(
        "{name:<28} {:>8.2}%  {:>9.1} ms  {:>9.2} ms",
        100.0 * acc,
        fit.as_secs_f64() * 1e3,
        predict.as_secs_f64() * 1e3
    );
}

/// Fits a clustering model with `fit_labels` and prints its ARI and fit time.
fn cluster(name: &str, y: &[usize], fit_labels: impl FnOnce() -> Result<Vec<usize>, BoxError>) {
    let t0 = Instant::now();
    match fit_labels() {
        Ok(labels) => {
            let ari = adjusted_rand_index(y, &labels).unwrap_or(f64::NAN);
            println!(
                "{name:<28} {ari:>9.4}  {:>9.1} ms",
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        Err(e) => println!("{name:<28} failed: {e}"),
    }
}

fn main() -> Result<(), BoxError> {
    let data = dl_data::datasets::digits::<f64>()?;
    let (n, d) = (data.n_samples(), data.n_features());
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(data.targets())?;
    let train = data.subset(&split.train)?;
    let test = data.subset(&split.test)?;
    println!(
        "digits: {n} samples x {d} features, {} train / {} test (stratified, seed 0)\n",
        train.n_samples(),
        test.n_samples()
    );
    let tr = (train.x(), train.targets());
    let te = (test.x(), test.targets());

    println!(
        "{:<28} {:>9}  {:>12}  {:>12}",
        "classifier", "test acc", "fit", "predict"
    );
    println!("{}", "-".repeat(66));
    row("kNN (k = 5, L2)", &KNeighborsClassifier::new(5), tr, te);
    row("kNN (k = 1, L2)", &KNeighborsClassifier::new(1), tr, te);
    row(
        "least squares (ridge 1)",
        &LeastSquaresClassifier::default().alpha(1.0),
        tr,
        te,
    );
    row("perceptron", &Perceptron::default(), tr, te);
    row(
        "logistic regression (C 1)",
        &LogisticRegression::default(),
        tr,
        te,
    );
    row("linear SVM (C 0.01)", &LinearSvm::default().c(0.01), tr, te);
    row("RBF SVM (C 1, gamma scale)", &KernelSvm::default(), tr, te);
    row(
        "poly-3 SVM (C 1)",
        &KernelSvm::default().kernel(Kernel::Poly {
            degree: 3,
            coef0: 0.0,
        }),
        tr,
        te,
    );
    row("Gaussian naive Bayes", &GaussianNb::default(), tr, te);
    row("multinomial naive Bayes", &MultinomialNb::default(), tr, te);
    row("LDA", &Lda::default(), tr, te);
    row("QDA (reg 0.1)", &Qda::default().reg_param(0.1), tr, te);
    row("decision tree (Gini)", &DecisionTree::default(), tr, te);
    row("random forest (100 trees)", &RandomForest::new(100), tr, te);
    row(
        "AdaBoost (100 depth-2 trees)",
        &AdaBoost::new(100).tree(DecisionTree::default().max_depth(Some(2))),
        tr,
        te,
    );
    row(
        "gradient boosting (100)",
        &GradientBoosting::default(),
        tr,
        te,
    );
    row(
        "hist gradient boosting",
        &HistGradientBoosting::default(),
        tr,
        te,
    );

    // Clustering: all 1,797 digits, 10 clusters, scored against the true labels.
    let x = data.x();
    let y = data.targets();
    println!(
        "\n{:<28} {:>9}  {:>12}",
        "clustering (k = 10)", "ARI", "fit"
    );
    println!("{}", "-".repeat(52));
    cluster("k-means (k-means++, 10 inits)", y, || {
        Ok(KMeans::new(10).n_init(10).seed(0).fit(x, &[])?.labels)
    });
    cluster("GMM (diagonal covariances)", y, || {
        let g = GaussianMixture::new(10)
            .covariance_type(CovarianceType::Diag)
            .reg_covar(1e-2)
            .seed(0)
            .fit(x, &[])?;
        Ok(g.predict(x)?)
    });
    cluster("spectral (10-NN graph)", y, || {
        let s = SpectralClustering::new(10)
            .affinity(Affinity::NearestNeighbors { n_neighbors: 10 })
            .seed(0)
            .fit(x, &[])?;
        Ok(s.labels)
    });
    Ok(())
}
