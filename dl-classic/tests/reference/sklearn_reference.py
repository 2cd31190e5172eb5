"""Reference figures from scikit-learn for dl-classic's accuracy tests.

Run from the repository root (scikit-learn 1.9.1 made the committed files):

    python3 dl-classic/tests/reference/sklearn_reference.py

It writes, next to itself:
- split_iris.txt, split_digits.txt: the fixed stratified split (line 1: train row
  indices, line 2: test row indices, comma separated, ascending). Definition: a
  numpy default_rng(SEED) permutation of the rows; for each class, the first
  floor(0.7 * n_class) rows of the permutation go to train, the rest to test.
- reference.csv: `dataset,method,metric,value` with the test accuracy of each
  supervised method (same hyper-parameters as tests/accuracy.rs), clustering ARI,
  PCA explained-variance ratios and GMM mean log-likelihood / BIC.

The Rust tests read these files and never need Python.
"""

import os

import numpy as np
from sklearn.cluster import KMeans, MeanShift, SpectralClustering
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.naive_bayes import BernoulliNB, GaussianNB, MultinomialNB
from sklearn.neighbors import KernelDensity, KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SEED = 42


def load(name):
    for path in (
        os.path.join(ROOT, "dl-data", "data", f"{name}.csv"),
        os.path.join(ROOT, "..", "shared", "data", name, f"{name}.csv"),
    ):
        if os.path.exists(path):
            raw = np.loadtxt(path, delimiter=",", skiprows=1)
            return raw[:, :-1], raw[:, -1].astype(int)
    raise FileNotFoundError(name)


def split(y):
    perm = np.random.default_rng(SEED).permutation(len(y))
    train, test = [], []
    for c in np.unique(y):
        members = [i for i in perm if y[i] == c]
        k = int(np.floor(0.7 * len(members)))
        train += members[:k]
        test += members[k:]
    return np.array(sorted(train)), np.array(sorted(test))


def classifiers(name):
    """(method, estimator) pairs; hyper-parameters mirror tests/accuracy.rs."""
    out = [
        ("knn_k5_uniform_l2", KNeighborsClassifier(5)),
        ("knn_k5_distance_l1", KNeighborsClassifier(5, weights="distance", p=1)),
        ("knn_k1_l2", KNeighborsClassifier(1)),
        ("least_squares_alpha1", RidgeClassifier(alpha=1.0)),
        ("logistic_c1", LogisticRegression(C=1.0, max_iter=20000, tol=1e-8)),
        ("gaussian_nb", GaussianNB()),
        ("multinomial_nb", MultinomialNB(alpha=1.0)),
        ("lda", LinearDiscriminantAnalysis()),
        ("qda_reg0.1", QuadraticDiscriminantAnalysis(reg_param=0.1)),
        ("tree_gini", DecisionTreeClassifier(random_state=0)),
        ("tree_entropy_depth5", DecisionTreeClassifier(criterion="entropy", max_depth=5, random_state=0)),
        ("forest_100", RandomForestClassifier(n_estimators=100, random_state=0)),
        ("bagging_50", BaggingClassifier(DecisionTreeClassifier(), n_estimators=50, random_state=0)),
        ("adaboost_depth2_100", AdaBoostClassifier(DecisionTreeClassifier(max_depth=2), n_estimators=100, random_state=0)),
        ("gradient_boosting_100", GradientBoostingClassifier(random_state=0)),
        ("hist_gradient_boosting_100", HistGradientBoostingClassifier(random_state=0)),
        ("linear_svm_c0.01", LinearSVC(C=0.01, loss="hinge", max_iter=100000, tol=1e-6)),
        ("svc_rbf_c1", SVC(C=1.0, kernel="rbf", gamma="scale")),
        ("svc_poly3_c1", SVC(C=1.0, kernel="poly", degree=3, gamma="scale", coef0=0.0)),
        ("svc_linear_c0.01", SVC(C=0.01, kernel="linear")),
    ]
    if name == "digits":
        out.append(("bernoulli_nb", BernoulliNB(alpha=1.0, binarize=0.0)))
    return out


def main():
    rows = []
    for name in ("iris", "digits"):
        x, y = load(name)
        train, test = split(y)
        with open(os.path.join(HERE, f"split_{name}.txt"), "w") as f:
            f.write(",".join(map(str, train)) + "\n")
            f.write(",".join(map(str, test)) + "\n")
        xtr, ytr, xte, yte = x[train], y[train], x[test], y[test]
        for method, est in classifiers(name):
            est.fit(xtr, ytr)
            acc = float(np.mean(est.predict(xte) == yte))
            rows.append((name, method, "accuracy", acc))
            if method == "forest_100":
                oob = RandomForestClassifier(n_estimators=100, random_state=0, oob_score=True).fit(xtr, ytr)
                rows.append((name, method, "oob_score", oob.oob_score_))
        # The perceptron's result depends on its shuffling, which no two libraries
        # share: compare the mean test accuracy over seeds 0..9 instead.
        accs = [np.mean(Perceptron(random_state=s).fit(xtr, ytr).predict(xte) == yte) for s in range(10)]
        rows.append((name, "perceptron_mean10", "accuracy", float(np.mean(accs))))
        # Likewise a fully grown tree's tie-breaking depends on its feature order.
        accs = [np.mean(DecisionTreeClassifier(random_state=s).fit(xtr, ytr).predict(xte) == yte) for s in range(10)]
        rows.append((name, "tree_gini_mean10", "accuracy", float(np.mean(accs))))
        # Binary logistic regression: label >= half the classes.
        yb = (y >= (y.max() + 1) // 2).astype(int)
        lr = LogisticRegression(C=1.0, max_iter=20000, tol=1e-8).fit(xtr, yb[train])
        rows.append((name, "logistic_binary_c1", "accuracy", float(np.mean(lr.predict(xte) == yb[test]))))

        # Unsupervised methods on the whole data set.
        k = len(np.unique(y))
        km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(x)
        rows.append((name, "kmeans", "ari", adjusted_rand_score(y, km.labels_)))
        pca = PCA().fit(x)
        for i, r in enumerate(pca.explained_variance_ratio_):
            rows.append((name, "pca", f"evr{i}", float(r)))
        if name == "iris":
            ms = MeanShift(bandwidth=1.0).fit(x)
            rows.append((name, "mean_shift_bw1", "ari", adjusted_rand_score(y, ms.labels_)))
        sc = SpectralClustering(n_clusters=k, affinity="nearest_neighbors", n_neighbors=10, random_state=0).fit(x)
        rows.append((name, "spectral_knn10", "ari", adjusted_rand_score(y, sc.labels_)))

    # GMM on iris from a fixed start (rows 0, 50, 100 as means, identity
    # covariances, equal weights), run to convergence so both sides reach the same
    # fixed point of EM.
    x, y = load("iris")
    for cov in ("full", "diag"):
        means = x[[0, 50, 100]]
        if cov == "full":
            prec = np.array([np.eye(4)] * 3)
        else:
            prec = np.ones((3, 4))
        g = GaussianMixture(3, covariance_type=cov, tol=1e-12, max_iter=10000, reg_covar=1e-6,
                            weights_init=np.ones(3) / 3, means_init=means, precisions_init=prec).fit(x)
        rows.append(("iris", f"gmm_{cov}", "mean_log_likelihood", g.score(x)))
        rows.append(("iris", f"gmm_{cov}", "bic", g.bic(x)))
        rows.append(("iris", f"gmm_{cov}", "ari", adjusted_rand_score(y, g.predict(x))))

    # Kernel density (Gaussian kernel, bandwidth rules in data units) and factor
    # analysis (exact SVD, run to convergence) on iris: total / mean log-likelihood.
    for rule in ("scott", "silverman"):
        kde = KernelDensity(bandwidth=rule).fit(x)
        rows.append(("iris", f"kde_{rule}", "total_log_likelihood", float(kde.score(x))))
    for name in ("iris", "digits"):
        xd, _ = load(name)
        k = 2 if name == "iris" else 10
        fa = FactorAnalysis(n_components=k, tol=1e-10, max_iter=100000, svd_method="lapack").fit(xd)
        rows.append((name, f"factor_analysis_k{k}", "mean_log_likelihood", float(fa.score(xd))))

    with open(os.path.join(HERE, "reference.csv"), "w") as f:
        f.write("dataset,method,metric,value\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]},{r[2]},{r[3]!r}\n")


if __name__ == "__main__":
    main()
