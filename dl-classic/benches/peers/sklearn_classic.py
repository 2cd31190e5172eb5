#!/usr/bin/env python3
"""scikit-learn timings of the workloads in dl-classic/benches/classic.rs.

Same sizes and the same kind of data as the criterion benches (the random draws
differ: numpy's generator, not dl_core::Rng):

- knn_brute/50000x784_q1000: KNeighborsClassifier(5, algorithm="brute") on 50,000 x
  784 uniform [0, 1) float32 rows; time of predict() on 1,000 uniform queries.
- kmeans/100000x32_k8: KMeans(8, init="k-means++", n_init=1, max_iter=20, tol=0,
  algorithm="lloyd") on 100,000 x 32 uniform [0, 1) float64 rows; fit time
  (k-means++ included). Lloyd iterations are reported next to the time: uniform
  data has no clusters to converge to, so both libraries run all 20.
- random_forest/digits_100: RandomForestClassifier(100) fit on load_digits()
  (1,797 x 64, float64).
- svm_rbf/digits: SVC(C=1, kernel="rbf", gamma="scale") fit on load_digits().
- gradient_boosting/digits_100: GradientBoostingClassifier() (100 stages, depth 3,
  learning rate 0.1) fit on load_digits(); scikit-learn fits it on one thread.
- hist_gradient_boosting/digits_100: HistGradientBoostingClassifier(early_stopping=False)
  (100 iterations, 31 leaves, 255 bins; OpenMP threads) fit on load_digits().

Each workload runs once to warm up, then 3 timed runs; the medians of wall and
CPU seconds (CPU summed over the process's threads: a fairer figure on a busy
machine) are printed as JSON, for 2 threads (threadpoolctl limits BLAS and OpenMP, n_jobs=2 for
the forest) and for 1 thread.

Run from the repository root: python3 dl-classic/benches/peers/sklearn_classic.py
(optional argument: a comma-separated subset of workload names).
"""

import json
import statistics
import sys
import time

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

RUNS = 3


def median_time(fn):
    """Median wall and CPU (all threads of the process) seconds of RUNS calls."""
    fn()  # warm-up: first-call costs (page faults, lazy imports) are not timed
    walls, cpus = [], []
    extra = None
    for _ in range(RUNS):
        c0, t0 = time.process_time(), time.perf_counter()
        extra = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), extra


def knn(threads):
    rng = np.random.default_rng(1)
    x = rng.random((50_000, 784), dtype=np.float32)
    y = np.arange(50_000) % 10
    q = rng.random((1_000, 784), dtype=np.float32)
    m = KNeighborsClassifier(5, algorithm="brute", n_jobs=threads).fit(x, y)
    return median_time(lambda: int(m.predict(q)[0]))


def kmeans(threads):
    rng = np.random.default_rng(3)
    n, d, k = 100_000, 32, 8
    x = rng.random((n, d), dtype=np.float32).astype(np.float64)

    def fit():
        m = KMeans(k, init="k-means++", n_init=1, max_iter=20, tol=0.0,
                   algorithm="lloyd", random_state=0).fit(x)
        return m.n_iter_

    return median_time(fit)


def forest(threads):
    x, y = load_digits(return_X_y=True)

    def fit():
        m = RandomForestClassifier(100, n_jobs=threads, random_state=0).fit(x, y)
        return len(m.estimators_)

    return median_time(fit)


def svm(threads):
    x, y = load_digits(return_X_y=True)

    def fit():
        return int(SVC(C=1.0, kernel="rbf", gamma="scale").fit(x, y).n_support_.sum())

    return median_time(fit)


def boosting(threads):
    x, y = load_digits(return_X_y=True)

    def fit():
        return len(GradientBoostingClassifier(random_state=0).fit(x, y).estimators_)

    return median_time(fit)


def hist_boosting(threads):
    x, y = load_digits(return_X_y=True)

    def fit():
        m = HistGradientBoostingClassifier(early_stopping=False, random_state=0).fit(x, y)
        return m.n_iter_

    return median_time(fit)


WORKLOADS = {
    "classic/knn_brute/50000x784_q1000": knn,
    "classic/kmeans/100000x32_k8": kmeans,
    "classic/random_forest/digits_100": forest,
    "classic/svm_rbf/digits": svm,
    "classic/gradient_boosting/digits_100": boosting,
    "classic/hist_gradient_boosting/digits_100": hist_boosting,
}


def main():
    """Usage: sklearn_classic.py [THREADS] [--quick]. Prints one JSON line in the format
    `cargo xtask bench --peers` reads: {"one_thread": {...}, "results": {id: {"median": s}}}
    (the requested thread count in "results", 1 thread beside it for reference)."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    threads = int(args[0]) if args else 2
    out = {"peer": "scikit-learn", "version": sklearn.__version__, "threads": threads,
           "runs": RUNS, "one_thread": {}, "results": {}}
    for t in ([threads, 1] if threads != 1 else [1]):
        with threadpool_limits(limits=t):
            for name, work in WORKLOADS.items():
                secs, cpu, extra = work(t)
                entry = {"median": secs, "cpu_seconds": cpu, "info": extra}
                (out["results"] if t == threads else out["one_thread"])[name] = entry
                print(f"# {t} thread(s) {name}: wall {secs:.4f} s, cpu {cpu:.4f} s ({extra})",
                      file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
