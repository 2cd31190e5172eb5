"""Exact scikit-learn outputs for dl-classic's deterministic models (tests/sklearn_parity.rs).

Run from the repository root (scikit-learn 1.9.1, numpy 2.4 made the committed file):

    python3 dl-classic/tests/reference/sklearn_parity.py

It writes sklearn_parity.csv next to itself: one record per line,
`key,v1,v2,...` (every number in Python's round-trip repr, so the Rust test reads
exactly the float64 scikit-learn produced). Matrices are row-major; the key names
say what each record is. Iris and digits use the committed split (split_*.txt);
the tree and SVM sets are synthetic, generated here and saved in the same file.

Where a comparison is only meaningful without ties (k-NN neighbour order, tree
split choice) this script checks for ties and keeps only tie-free cases, so the
Rust test can demand exact equality.
"""

import os
import warnings

import numpy as np
from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = []


def put(key, values):
    arr = np.asarray(values, dtype=float).ravel()
    OUT.append(key + "," + ",".join(repr(float(v)) for v in arr))


def load(name):
    for path in (
        os.path.join(ROOT, "dl-data", "data", f"{name}.csv"),
        os.path.join(ROOT, "..", "shared", "data", name, f"{name}.csv"),
    ):
        if os.path.exists(path):
            raw = np.loadtxt(path, delimiter=",", skiprows=1)
            return raw[:, :-1], raw[:, -1].astype(int)
    raise FileNotFoundError(name)


def train_test(name):
    x, y = load(name)
    with open(os.path.join(HERE, f"split_{name}.txt")) as f:
        tr = [int(v) for v in f.readline().split(",")]
        te = [int(v) for v in f.readline().split(",")]
    return x[tr], y[tr], x[te], y[te]


# ---------------------------------------------------------------- k-NN


def knn(name, xtr, ytr, xte, k, weights, p):
    tag = f"knn_{name}_k{k}_{weights}_p{p}"
    # Exact distances, to keep only queries whose k-th and (k+1)-th nearest
    # distances differ (by a relative margin far above rounding): then the set of k
    # neighbours is the same under any tie rule or distance arithmetic. Neighbours
    # at equal distances may come in any order, so the Rust test compares each
    # query's neighbours sorted by (distance, index).
    diff = xte[:, None, :] - xtr[None, :, :]
    dist = np.abs(diff).sum(-1) if p == 1 else np.sqrt((diff**2).sum(-1))
    keep = []
    for q in range(len(xte)):
        s = np.sort(dist[q])[: k + 1]
        if s[k] - s[k - 1] > 1e-9 * s[k]:
            keep.append(q)
    keep = np.array(keep)
    m = KNeighborsClassifier(k, weights=weights, p=p, algorithm="brute").fit(xtr, ytr)
    d, i = m.kneighbors(xte[keep])
    put(f"{tag}_queries", keep)
    put(f"{tag}_dist", d)
    put(f"{tag}_ind", i)
    put(f"{tag}_proba", m.predict_proba(xte[keep]))
    put(f"{tag}_pred", m.predict(xte[keep]))
    print(tag, len(keep), "of", len(xte), "queries without a tie at the k-th neighbour")


# ---------------------------------------------------------------- trees


def best_split_gaps(tree, x, y, classify):
    """For every split node of a fitted scikit-learn tree, the gap between the best
    and the second-best candidate split (over all features and thresholds, by the
    same impurity decrease), relative to the node's impurity. Used to prove the
    chosen split is unique, so the tree does not depend on tie-breaking."""
    t = tree.tree_
    paths = tree.decision_path(x).toarray().astype(bool)
    gaps = []
    for node in range(t.node_count):
        if t.children_left[node] == -1:
            continue
        rows = paths[:, node]
        xs, ys = x[rows], y[rows]
        n = len(ys)
        cands = []
        for f in range(x.shape[1]):
            order = np.argsort(xs[:, f], kind="stable")
            v, yy = xs[order, f], ys[order]
            for pos in range(1, n):
                if v[pos] <= v[pos - 1]:
                    continue
                if pos < tree.min_samples_leaf or n - pos < tree.min_samples_leaf:
                    continue
                l, r = yy[:pos], yy[pos:]
                if classify:
                    def gini(z):
                        _, c = np.unique(z, return_counts=True)
                        return 1 - np.sum((c / len(z)) ** 2)
                    child = (len(l) * gini(l) + len(r) * gini(r)) / n
                else:
                    child = (len(l) * np.var(l) + len(r) * np.var(r)) / n
                cands.append((child, f, (v[pos - 1] + v[pos]) / 2))
        cands.sort()
        best, second = cands[0], cands[1]
        if best[1] != t.feature[node] or abs(best[2] - t.threshold[node]) > 1e-12:
            gaps.append(-1.0)  # not the split found here: a tie; try other data
            continue
        gaps.append((second[0] - best[0]) / max(t.impurity[node], 1e-300))
    return np.array(gaps)


def trees():
    # Features on a 1/64 grid (exact in float32, which scikit-learn's trees use
    # internally, and far more than its 1e-7 FEATURE_THRESHOLD apart).
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        n, d = 240, 4
        x = np.round(rng.normal(size=(n, d)) * 64) / 64
        score = x[:, 0] + 0.8 * x[:, 1] ** 2 - 0.5 * x[:, 2] + 0.3 * rng.normal(size=n)
        y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
        yr = np.round((np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 3] + 0.2 * rng.normal(size=n)) * 64) / 64
        clf = DecisionTreeClassifier(max_depth=4, min_samples_leaf=8, random_state=0).fit(x, y)
        reg = DecisionTreeRegressor(max_depth=4, min_samples_leaf=8, random_state=0).fit(x, yr)
        gc = best_split_gaps(clf, x, y, True)
        gr = best_split_gaps(reg, x, yr, False)
        if gc.min() > 1e-6 and gr.min() > 1e-6:
            break
    print("tree data seed", 1000 + seed, "smallest relative gain gaps", gc.min(), gr.min())
    put("tree_x", x)
    put("tree_y", y)
    put("tree_yr", yr)
    for tag, m in (("tree_clf", clf), ("tree_reg", reg)):
        t = m.tree_
        put(f"{tag}_feature", t.feature)
        put(f"{tag}_threshold", t.threshold)
        put(f"{tag}_left", t.children_left)
        put(f"{tag}_right", t.children_right)
        v = t.value[:, 0, :]
        if tag == "tree_clf":
            v = v / v.sum(1, keepdims=True)
        put(f"{tag}_value", v)
        put(f"{tag}_importances", m.feature_importances_)


# ---------------------------------------------------------------- logistic


def logistic_certificate(tag, m, x, y, c):
    """Gradient norm of scikit-learn's mean objective at its solution and the
    smallest curvature of that objective (on the subspace where it is strictly
    convex), so the Rust test can bound how far two near-optimal solutions may be
    apart: ||theta_a - theta_b|| <= (||g_a|| + ||g_b||) / mu."""
    n, d = x.shape
    xt = np.hstack([x, np.ones((n, 1))])
    classes = np.unique(y)
    if len(classes) == 2:
        theta = np.append(m.coef_[0], m.intercept_[0])
        z = xt @ theta
        p = 1 / (1 + np.exp(-z))
        t = (y == classes[1]).astype(float)
        pen = np.append(np.ones(d), 0.0) / (c * n)
        g = xt.T @ (p - t) / n + pen * theta
        h = (xt.T * (p * (1 - p))) @ xt / n + np.diag(pen)
        mu = np.linalg.eigvalsh(h)[0]
    else:
        k = len(classes)
        w = np.hstack([m.coef_, m.intercept_[:, None]])  # k x (d+1)
        z = xt @ w.T
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        t = (y[:, None] == classes[None, :]).astype(float)
        pen = np.append(np.ones(d), 0.0) / (c * n)
        g = (p - t).T @ xt / n + w * pen
        # Hessian over vec(w) (class-major), (d+1)k square.
        h = np.zeros(((d + 1) * k, (d + 1) * k))
        for i in range(n):
            s = np.diag(p[i]) - np.outer(p[i], p[i])
            h += np.kron(s, np.outer(xt[i], xt[i]))
        h /= n
        h += np.diag(np.tile(pen, k))
        # Softmax is unchanged by adding one constant to every intercept: that
        # direction has zero curvature and is fixed by centring the intercepts.
        ev = np.linalg.eigvalsh(h)
        assert ev[0] < 1e-12 * ev[-1]
        mu = ev[1]
        g = g - 0  # the gradient already has zero component along that direction
    put(f"{tag}_grad_norm", [np.linalg.norm(g)])
    put(f"{tag}_mu", [mu])
    print(tag, "grad norm", np.linalg.norm(g), "mu", mu, "bound", np.linalg.norm(g) / mu)


def main():
    xtr, ytr, xte, yte = train_test("iris")
    dtr, dtr_y, dte, dte_y = train_test("digits")

    # k-NN: iris (the KD-tree path of dl-classic) and digits (brute force, GEMM).
    knn("iris", xtr, ytr, xte, 5, "uniform", 2)
    knn("iris", xtr, ytr, xte, 5, "distance", 1)
    knn("digits", dtr, dtr_y, dte, 5, "uniform", 2)
    knn("digits", dtr, dtr_y, dte, 5, "distance", 1)

    # Gaussian naive Bayes (var_smoothing 1e-9, scikit-learn's default).
    for name, a, b, c in (("iris", xtr, ytr, xte), ("digits", dtr, dtr_y, dte)):
        m = GaussianNB().fit(a, b)
        put(f"gnb_{name}_log_prior", np.log(m.class_prior_))
        put(f"gnb_{name}_theta", m.theta_)
        put(f"gnb_{name}_var", m.var_)
        put(f"gnb_{name}_jll", m._joint_log_likelihood(c))
        put(f"gnb_{name}_proba", m.predict_proba(c))
        put(f"gnb_{name}_pred", m.predict(c))

    # LDA (solver 'svd', tol 1e-4: dl-classic's pseudo-inverse on standardized
    # features) and QDA (ddof 0 covariances, reg_param as given).
    for name, a, b, c in (("iris", xtr, ytr, xte), ("digits", dtr, dtr_y, dte)):
        m = LinearDiscriminantAnalysis().fit(a, b)
        put(f"lda_{name}_coef", m.coef_)
        put(f"lda_{name}_intercept", m.intercept_)
        put(f"lda_{name}_decision", m.decision_function(c))
        put(f"lda_{name}_proba", m.predict_proba(c))
        put(f"lda_{name}_pred", m.predict(c))
        # Condition number of the kept part of the standardized within-class
        # covariance (the directions dropped by tol are exact zeros here:
        # constant pixels), which bounds the rounding of its pseudo-inverse.
        k = len(m.classes_)
        mu = np.array([a[b == j].mean(0) for j in m.classes_])
        xc = a - mu[np.searchsorted(m.classes_, b)]
        std = xc.std(0)
        std[std == 0] = 1
        sv = np.linalg.svd(xc / std / np.sqrt(len(b)), compute_uv=False)
        kept = sv[sv > 1e-4]
        assert np.all(sv[sv <= 1e-4] < 1e-12)
        put(f"lda_{name}_cond", [(kept[0] / kept[-1]) ** 2])
    for reg in (0.0, 0.3):
        m = QuadraticDiscriminantAnalysis(reg_param=reg).fit(xtr, ytr)
        put(f"qda_iris_reg{reg}_decision", m.decision_function(xte))
        put(f"qda_iris_reg{reg}_proba", m.predict_proba(xte))
        put(f"qda_iris_reg{reg}_pred", m.predict(xte))

    # Least squares: iris petal width from the other three features (OLS and
    # ridge), and RidgeClassifier (one-vs-all +-1 targets) on iris and digits.
    # The condition number of the centred Gram matrix bounds the rounding error.
    a, t = xtr[:, :3], xtr[:, 3]
    ac = a - a.mean(0)
    for alpha in (0.0, 1.0):
        m = (LinearRegression() if alpha == 0 else Ridge(alpha=alpha)).fit(a, t)
        put(f"linreg_iris_alpha{alpha}_coef", m.coef_)
        put(f"linreg_iris_alpha{alpha}_intercept", [m.intercept_])
        put(f"linreg_iris_alpha{alpha}_cond", [np.linalg.cond(ac.T @ ac + alpha * np.eye(3))])
    for name, a, b in (("iris", xtr, ytr), ("digits", dtr, dtr_y)):
        m = RidgeClassifier(alpha=1.0).fit(a, b)
        ac = a - a.mean(0)
        put(f"ridgeclf_{name}_coef", m.coef_)
        put(f"ridgeclf_{name}_intercept", m.intercept_)
        put(f"ridgeclf_{name}_cond", [np.linalg.cond(ac.T @ ac + np.eye(a.shape[1]))])

    # Logistic regression (L2, C = 1): multinomial on iris, and binary on iris
    # classes 1 vs 2. Every scikit-learn solver minimizes the same objective; lbfgs
    # stops on its function-change test with a gradient norm ~1e-7 here (a
    # distance bound of ~4e-4 on unscaled iris), so newton-cholesky, which
    # converges quadratically, gives the optimum to ~1e-11 instead.
    lr = dict(C=1.0, tol=1e-14, max_iter=1000, solver="newton-cholesky")
    m = LogisticRegression(**lr).fit(xtr, ytr)
    put("logistic_iris_coef", m.coef_)
    put("logistic_iris_intercept", m.intercept_)
    put("logistic_iris_proba", m.predict_proba(xte))
    logistic_certificate("logistic_iris", m, xtr, ytr, 1.0)
    sel, selt = ytr > 0, yte > 0
    m = LogisticRegression(**lr).fit(xtr[sel], ytr[sel])
    put("logistic_iris12_coef", m.coef_)
    put("logistic_iris12_intercept", m.intercept_)
    put("logistic_iris12_proba", m.predict_proba(xte[selt]))
    logistic_certificate("logistic_iris12", m, xtr[sel], ytr[sel], 1.0)

    trees()

    # Linear SVM: LinearSVC (intercept as a regularized constant feature,
    # one-vs-rest) on iris. Squared hinge, C = 1: with n > d scikit-learn takes
    # liblinear's primal trust-region Newton solver, which stops at a gradient
    # norm ~1e-7 here (the Rust test bounds the distance by it). Hinge, C = 0.01
    # (tests/accuracy.rs's setting): liblinear's dual coordinate descent, run to
    # its iteration cap at tol 1e-14; its solution is within ~2e-7 of the
    # optimum by the certificate the Rust test computes.
    m = LinearSVC(C=1.0, loss="squared_hinge", tol=1e-12, max_iter=1_000_000).fit(xtr, ytr)
    put("svm_iris_coef", m.coef_)
    put("svm_iris_intercept", m.intercept_)
    put("svm_iris_decision", m.decision_function(xte))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the iteration cap is the point here
        m = LinearSVC(C=0.01, loss="hinge", tol=1e-14, max_iter=1_000_000).fit(xtr, ytr)
    put("svm_iris_hinge_coef", m.coef_)
    put("svm_iris_hinge_intercept", m.intercept_)
    put("svm_iris_hinge_decision", m.decision_function(xte))

    with open(os.path.join(HERE, "sklearn_parity.csv"), "w") as f:
        f.write("\n".join(OUT) + "\n")


if __name__ == "__main__":
    main()
