"""scikit-learn figures pinned in tests/gradient_boosting.rs (1-D data with distinct
values, so no two candidate splits tie and both libraries grow the same trees).

    python3 dl-classic/tests/reference/gradient_boosting_reference.py

prints the predictions the Rust test compares to 1e-9 (scikit-learn 1.9.1).
"""

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

x = np.arange(30, dtype=float).reshape(-1, 1)
q = np.array([[-1.0], [0.5], [3.2], [7.7], [12.1], [19.5], [24.4], [40.0]])


def show(name, values):
    print(f"{name}: {', '.join(repr(float(v)) for v in np.ravel(values))}")


# Regression: a wiggle on a slope.
y = 3.0 * np.sin(0.7 * x[:, 0]) + 0.1 * x[:, 0]
r = GradientBoostingRegressor(n_estimators=10, max_depth=2, learning_rate=0.3, random_state=0).fit(x, y)
show("regression predict", r.predict(q))
show("regression train_score", r.train_score_)

# Two classes: the sign of an irregular wave.
yb = (np.sin(0.9 * x[:, 0]) + 0.3 * np.cos(2.3 * x[:, 0]) > 0).astype(int)
b = GradientBoostingClassifier(n_estimators=10, max_depth=2, learning_rate=0.5, random_state=0).fit(x, yb)
show("binary proba1", b.predict_proba(q)[:, 1])
show("binary train_score", b.train_score_)

# Three classes.
ym = ((np.sin(0.5 * x[:, 0]) + 0.4 * np.cos(1.7 * x[:, 0]) + 1.5) // 1.0).astype(int).clip(0, 2)
print("three classes counts", np.bincount(ym))
mc = GradientBoostingClassifier(n_estimators=10, max_depth=2, learning_rate=0.5, random_state=0).fit(x, ym)
show("multi proba", mc.predict_proba(q))
show("multi train_score", mc.train_score_)

# Robust and quantile regression losses on the same data. Absolute and quantile
# losses fit trees to two-valued pseudo-residuals, where split gains can tie
# exactly and the libraries' rounding would break the tie differently: alpha=0.9
# has no such tie over these 10 stages (0.6, 0.7 and 0.8 do).
for loss, kw in [("absolute_error", {}), ("huber", {"alpha": 0.9}), ("quantile", {"alpha": 0.9})]:
    r = GradientBoostingRegressor(loss=loss, n_estimators=10, max_depth=2, learning_rate=0.3, random_state=0, **kw).fit(x, y)
    show(f"{loss} init", [r.init_.constant_.ravel()[0]] if hasattr(r.init_, "constant_") else [])
    show(f"{loss} predict", r.predict(q))
    show(f"{loss} train_score", r.train_score_)

# Histogram gradient boosting (all 30 values distinct: one bin each).
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

h = HistGradientBoostingRegressor(max_iter=10, learning_rate=0.3, max_leaf_nodes=4, min_samples_leaf=3, early_stopping=False).fit(x, y)
show("hist regression predict", h.predict(q))
hb = HistGradientBoostingClassifier(max_iter=10, learning_rate=0.5, max_leaf_nodes=4, min_samples_leaf=3, early_stopping=False).fit(x, yb)
show("hist binary proba1", hb.predict_proba(q)[:, 1])
hm = HistGradientBoostingClassifier(max_iter=10, learning_rate=0.5, max_leaf_nodes=4, min_samples_leaf=3, early_stopping=False).fit(x, ym)
show("hist multi proba", hm.predict_proba(q))
