"""scikit-learn's kNN, tree and random-forest regressors on the diabetes set
(tests/regressors.rs).

Run from the repository root (scikit-learn 1.9.1, numpy 2.4 made the committed files):

    python3 dl-classic/tests/reference/regressors.py

Writes next to itself:
- `diabetes.csv`: scikit-learn's bundled `load_diabetes(scaled=False)` (442 rows,
  10 features rounded to float32, see below; target last; BSD-licensed data shipped
  with scikit-learn), rows in a
  `default_rng(0)` permutation: the first 331 rows are the training set, the
  remaining 111 the test set.
- `regressors.csv`: `key,v1,v2,...` records (floats in round-trip repr).

kNN predictions are only compared for test queries without a tie at the k-th
neighbour (then the neighbour set is the same under any tie rule). The CART
settings are the first, of a few, under which every split scikit-learn chose beats
the runner-up by a relative margin > 1e-6 (checked by `best_split_gaps` from
sklearn_parity.py), so the tree does not depend on tie-breaking.
"""

import os
import sys

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sklearn_parity import best_split_gaps  # noqa: E402

OUT = []
N_TRAIN = 331


def put(key, values):
    arr = np.asarray(values, dtype=float).ravel()
    OUT.append(key + "," + ",".join(repr(float(v)) for v in arr))


def main():
    x, y = load_diabetes(return_X_y=True, scaled=False)
    perm = np.random.default_rng(0).permutation(len(y))
    # Features rounded to float32 (a change of < 6e-8 relative): scikit-learn's
    # trees split on float32 copies, so only then are their thresholds the exact
    # midpoints a float64 tree computes.
    x, y = x[perm].astype(np.float32).astype(np.float64), y[perm]
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]
    with open(os.path.join(HERE, "diabetes.csv"), "w") as f:
        f.write(",".join(names) + "\n")
        for row, t in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + "," + repr(float(t)) + "\n")
    xtr, ytr, xte, yte = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]

    # kNN: brute force in float64 (so sklearn's distances are exact up to rounding).
    for k in (1, 5, 10):
        for metric, p in (("l2", 2), ("l1", 1)):
            dist = np.linalg.norm(xte[:, None, :] - xtr[None, :, :], ord=p, axis=2)
            srt = np.sort(dist, axis=1)
            # A relative gap of 1e-9 between the k-th and (k+1)-th distance is far
            # above rounding (~1e-15), so both codes pick the same k neighbours.
            keep = np.nonzero(srt[:, k] - srt[:, k - 1] > 1e-9 * srt[:, k])[0]
            print(f"knn k={k} {metric}: {len(keep)} of {len(xte)} queries tie-free")
            put(f"knn_{metric}_k{k}_keep", keep)
            for weights in ("uniform", "distance"):
                m = KNeighborsRegressor(
                    n_neighbors=k, weights=weights, metric="minkowski", p=p, algorithm="brute"
                ).fit(xtr, ytr)
                put(f"knn_{metric}_k{k}_{weights}", m.predict(xte[keep]))

    # CART regressor (and the equivalent forest: no bootstrap, all features).
    for depth, leaf in ((4, 10), (5, 10), (4, 15), (3, 10), (3, 20)):
        reg = DecisionTreeRegressor(max_depth=depth, min_samples_leaf=leaf, random_state=0)
        reg.fit(xtr, ytr)
        gaps = best_split_gaps(reg, xtr, ytr, False)
        print("cart", depth, leaf, "smallest gap", gaps.min(), "ties", (gaps < 1e-6).sum())
        if gaps.min() > 1e-6:
            break
    else:
        raise SystemExit("no tie-free CART setting")
    print("cart max_depth", depth, "min_samples_leaf", leaf, "smallest gap", gaps.min())
    put("cart_params", [depth, leaf])
    put("cart_pred", reg.predict(xte))
    rf = RandomForestRegressor(
        n_estimators=10,
        bootstrap=False,
        max_features=1.0,
        max_depth=depth,
        min_samples_leaf=leaf,
        random_state=0,
    ).fit(xtr, ytr)
    put("forest_nobootstrap_pred", rf.predict(xte))

    # Bootstrap forest: test R^2 under several seeds (their spread is the
    # randomness a different random stream brings).
    params = dict(n_estimators=200, max_features=1.0 / 3.0, min_samples_leaf=5)
    r2 = []
    for seed in range(10):
        rf = RandomForestRegressor(random_state=seed, **params).fit(xtr, ytr)
        r2.append(r2_score(yte, rf.predict(xte)))
    r2 = np.array(r2)
    print("forest R^2 over 10 seeds: mean", r2.mean(), "min", r2.min(), "max", r2.max())
    put("forest_params", [params["n_estimators"], params["min_samples_leaf"]])
    put("forest_r2", r2)

    with open(os.path.join(HERE, "regressors.csv"), "w") as f:
        f.write("\n".join(OUT) + "\n")


if __name__ == "__main__":
    main()
