"""scikit-learn feature importances pinned in tests/importances.rs.

    python3 dl-classic/tests/reference/importances_reference.py

The features are exact in both languages (Weyl sequences: odd multipliers modulo 2^32) and distinct
within each feature, and the targets are polynomials of them, so both libraries
grow the same trees (scikit-learn 1.9.1 printed the committed figures).
"""

import numpy as np
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

N, D = 200, 4
MULT = np.array([2654435761, 2246822519, 3266489917, 668265263], dtype=np.int64)
i = np.arange(N, dtype=np.int64)[:, None]
# Feature j of row i: frac(i * MULT[j] / 2^32 + j / 8), exact in f64.
x = ((i * MULT[None, :] + np.arange(D) * 536870912) % 4294967296).astype(np.float64) / 4294967296.0
yc = (x[:, 0] + 0.5 * x[:, 1] > 0.9).astype(int) + (x[:, 2] > 0.7).astype(int)
yr = 2.0 * x[:, 0] + x[:, 1] * x[:, 1] - 0.5 * x[:, 2] * x[:, 1]


def show(name, model):
    print(f"{name}: {', '.join(repr(float(v)) for v in model.feature_importances_)}")


print("class counts", np.bincount(yc))
# min_samples_leaf=3 keeps nodes from isolating one or two rows, where several
# features split equally well and the libraries would break the tie differently
# (with it, scikit-learn's figures do not change over random_state 0..14).
LEAF = 3
show("tree_classifier_depth4", DecisionTreeClassifier(max_depth=4, min_samples_leaf=LEAF, random_state=0).fit(x, yc))
show("tree_regressor_depth4", DecisionTreeRegressor(max_depth=4, min_samples_leaf=LEAF, random_state=0).fit(x, yr))
show("gb_classifier_20_depth2", GradientBoostingClassifier(n_estimators=20, max_depth=2, min_samples_leaf=LEAF, random_state=0).fit(x, yc))
show("gb_regressor_20_depth2", GradientBoostingRegressor(n_estimators=20, max_depth=2, min_samples_leaf=LEAF, random_state=0).fit(x, yr))
show("adaboost_10_depth2", AdaBoostClassifier(DecisionTreeClassifier(max_depth=2, min_samples_leaf=LEAF), n_estimators=10, random_state=0).fit(x, yc))
show("forest_200", RandomForestClassifier(n_estimators=200, random_state=0).fit(x, yc))
