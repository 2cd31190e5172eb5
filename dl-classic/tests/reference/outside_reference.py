"""Writes outside_reference.txt: reference values from hmmlearn, statsmodels and
scikit-learn for the dl-classic methods that have no scikit-learn twin (HMM, LOESS,
KDE, Nadaraya-Watson). Read by tests/outside_parity.rs.

Run from the repository root:
    pip install hmmlearn statsmodels scikit-learn
    python3 dl-classic/tests/reference/outside_reference.py

Format: one array per line, `name v1 v2 ...` (values written with repr, so every
f64 round-trips exactly); lines starting with `#` are comments. Inputs are written
too, so the Rust test needs no random generator of its own.
"""

import os
import numpy as np
import hmmlearn
import sklearn
import statsmodels
from hmmlearn.hmm import CategoricalHMM, GaussianHMM
from sklearn.neighbors import KernelDensity
from statsmodels.nonparametric.kde import KDEUnivariate
from statsmodels.nonparametric.kernel_regression import KernelReg
from statsmodels.nonparametric.smoothers_lowess import lowess

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "outside_reference.txt")
rng = np.random.default_rng(24)
lines = [
    f"# hmmlearn {hmmlearn.__version__}, statsmodels {statsmodels.__version__}, "
    f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
]


def put(name, values):
    v = np.asarray(values, dtype=float).ravel()
    lines.append(name + " " + " ".join(repr(float(x)) for x in v))


def stochastic(rows, cols):
    return rng.dirichlet(np.full(cols, 2.0), size=rows)


# Baum-Welch is compared after each of these many iterations.
EM_ITERS = 15

# ---------------------------------------------------------------- discrete HMM
# A 3-state, 4-symbol model; three sequences sampled from it; a different model
# as the common EM starting point.
n, m = 3, 4
truth = CategoricalHMM(n_components=n, n_features=m)
truth.startprob_ = stochastic(1, n)[0]
truth.transmat_ = stochastic(n, n)
truth.emissionprob_ = stochastic(n, m)
lengths = [40, 25, 60]
seqs = [truth.sample(L, random_state=int(rng.integers(1 << 31)))[0].ravel() for L in lengths]
put("disc_start", truth.startprob_)
put("disc_trans", truth.transmat_)
put("disc_emit", truth.emissionprob_)
for s, seq in enumerate(seqs):
    put(f"disc_seq{s}", seq)
# Inference on each sequence with the true model.
for s, seq in enumerate(seqs):
    X = seq.reshape(-1, 1)
    put(f"disc_seq{s}_score", [truth.score(X)])
    put(f"disc_seq{s}_posteriors", truth.predict_proba(X))
    logp, path = truth.decode(X, algorithm="viterbi")
    put(f"disc_seq{s}_viterbi_logp", [logp])
    put(f"disc_seq{s}_viterbi_path", path)
# A long sequence: the forward pass must rescale to stay finite (p(o) ~ e^-1000).
long_seq = truth.sample(800, random_state=7)[0].ravel()
put("disc_long", long_seq)
put("disc_long_score", [truth.score(long_seq.reshape(-1, 1))])
logp, path = truth.decode(long_seq.reshape(-1, 1), algorithm="viterbi")
put("disc_long_viterbi_logp", [logp])
put("disc_long_viterbi_path", path)

init = (stochastic(1, n)[0], stochastic(n, n), stochastic(n, m))
put("disc_init_start", init[0])
put("disc_init_trans", init[1])
put("disc_init_emit", init[2])
X = np.concatenate(seqs).reshape(-1, 1)
for k in range(1, EM_ITERS + 1):
    # Priors of 1 are "no prior" (hmmlearn adds prior - 1 to the counts), so the
    # M-step is plain maximum likelihood, as ours. tol=-inf: never stop early.
    h = CategoricalHMM(n_components=n, n_features=m, n_iter=k, tol=-np.inf,
                       init_params="", params="ste", startprob_prior=1.0,
                       transmat_prior=1.0, emissionprob_prior=1.0)
    h.startprob_, h.transmat_, h.emissionprob_ = (a.copy() for a in init)
    h.fit(X, lengths)
    assert len(h.monitor_.history) == k
    put(f"disc_em{k}_start", h.startprob_)
    put(f"disc_em{k}_trans", h.transmat_)
    put(f"disc_em{k}_emit", h.emissionprob_)
    # hmmlearn records the log-likelihood of the E-step, i.e. of the parameters
    # before iteration k's M-step.
    put(f"disc_em{k}_ll", [h.monitor_.history[-1]])

# ------------------------------------------------------- diagonal-Gaussian HMM
n, d = 3, 2
gt = GaussianHMM(n_components=n, covariance_type="diag")
gt.startprob_ = stochastic(1, n)[0]
gt.transmat_ = stochastic(n, n)
gt.means_ = rng.normal(0.0, 2.0, size=(n, d))
gt.covars_ = rng.uniform(0.3, 1.5, size=(n, d))
glengths = [80, 50]
gseqs = [gt.sample(L, random_state=int(rng.integers(1 << 31)))[0] for L in glengths]
put("gauss_start", gt.startprob_)
put("gauss_trans", gt.transmat_)
put("gauss_means", gt.means_)
put("gauss_vars", gt.covars_[:, np.arange(d), np.arange(d)])
for s, seq in enumerate(gseqs):
    put(f"gauss_seq{s}", seq)
    put(f"gauss_seq{s}_score", [gt.score(seq)])
    put(f"gauss_seq{s}_posteriors", gt.predict_proba(seq))
    logp, path = gt.decode(seq, algorithm="viterbi")
    put(f"gauss_seq{s}_viterbi_logp", [logp])
    put(f"gauss_seq{s}_viterbi_path", path)

ginit = (stochastic(1, n)[0], stochastic(n, n),
         rng.normal(0.0, 2.0, size=(n, d)), rng.uniform(0.5, 2.0, size=(n, d)))
put("gauss_init_start", ginit[0])
put("gauss_init_trans", ginit[1])
put("gauss_init_means", ginit[2])
put("gauss_init_vars", ginit[3])
GX = np.concatenate(gseqs)
for k in range(1, EM_ITERS + 1):
    # means_weight=0, covars_prior=0, covars_weight=1 make the M-step plain maximum
    # likelihood (variance = sum g (x - mu)^2 / sum g). hmmlearn's min_covar is
    # used only by its own initialisation, which init_params="" switches off.
    h = GaussianHMM(n_components=n, covariance_type="diag", n_iter=k, tol=-np.inf,
                    init_params="", params="stmc", startprob_prior=1.0,
                    transmat_prior=1.0, means_prior=0.0, means_weight=0.0,
                    covars_prior=0.0, covars_weight=1.0)
    h.startprob_, h.transmat_, h.means_, h.covars_ = (a.copy() for a in ginit)
    h.fit(GX, glengths)
    assert len(h.monitor_.history) == k
    put(f"gauss_em{k}_start", h.startprob_)
    put(f"gauss_em{k}_trans", h.transmat_)
    put(f"gauss_em{k}_means", h.means_)
    put(f"gauss_em{k}_vars", h.covars_[:, np.arange(d), np.arange(d)])
    put(f"gauss_em{k}_ll", [h.monitor_.history[-1]])

# ----------------------------------------------------------------------- LOESS
# 40 distinct sorted x, a sine with noise and four gross outliers.
nl = 40
lx = np.sort(rng.uniform(0.0, 10.0, nl))
ly = np.sin(lx) + rng.normal(0.0, 0.2, nl)
ly[[5, 17, 18, 31]] += np.array([3.0, -2.5, 4.0, -3.0])
grid = np.linspace(lx[0] + 0.05, lx[-1] - 0.05, 30)
put("loess_x", lx)
put("loess_y", ly)
put("loess_grid", grid)
# Spans of 10, 13.2 and 20 points: both libraries take
# int(frac n + 1e-10) neighbours, so 13 for the middle one (a ceiling would take 14).
for frac in (0.25, 0.33, 0.5):
    for it in (0, 3):
        tag = f"loess_f{int(frac * 100)}_it{it}"
        put(tag + "_train", lowess(ly, lx, frac=frac, it=it, delta=0.0,
                                   is_sorted=True, return_sorted=False))
        put(tag + "_grid", lowess(ly, lx, frac=frac, it=it, delta=0.0, xvals=grid,
                                  is_sorted=True))

# ------------------------------------------------------------------------- KDE
# Three dimensions, so Scott's and Silverman's rules differ (they coincide at d = 2);
# the last query lies far from every sample (log density about -100).
kx = np.concatenate([rng.normal(0.0, 1.0, (40, 3)), rng.normal(3.0, 0.5, (20, 3))])
kq = np.concatenate([rng.uniform(-2.0, 5.0, (12, 3)), [[9.0, -6.0, 4.0]]])
put("kde_x", kx)
put("kde_q", kq)
for bw in (0.7, "scott", "silverman"):
    kd = KernelDensity(kernel="gaussian", bandwidth=bw).fit(kx)
    put(f"kde_{bw}_logp", kd.score_samples(kq))
# One dimension, against statsmodels as a second peer.
k1 = kx[:, 0].copy()
q1 = np.linspace(-3.0, 5.0, 17)
put("kde1_x", k1)
put("kde1_q", q1)
ku = KDEUnivariate(k1)
ku.fit(kernel="gau", bw=0.45, fft=False)
put("kde1_sm_logp", np.log(ku.evaluate(q1)))
put("kde1_sk_logp", KernelDensity(kernel="gaussian", bandwidth=0.45)
    .fit(k1[:, None]).score_samples(q1[:, None]))

# ------------------------------------------------------------- Nadaraya-Watson
nx = rng.uniform(-3.0, 3.0, (50, 2))
ny = np.sin(nx[:, 0]) * nx[:, 1] + rng.normal(0.0, 0.1, 50)
nq = rng.uniform(-2.5, 2.5, (15, 2))
put("nw_x", nx)
put("nw_y", ny)
put("nw_q", nq)
for h in (0.3, 1.2):
    # statsmodels' product Gaussian kernel with equal widths is
    # exp(-||u||^2 / (2 h^2)) times a constant, which the ratio cancels.
    kr = KernelReg(ny, nx, var_type="cc", reg_type="lc", bw=[h, h])
    put(f"nw_h{h}_pred", kr.fit(nq)[0])
kr = KernelReg(ny, nx[:, 0], var_type="c", reg_type="lc", bw=[0.5])
put("nw1_pred", kr.fit(nq[:, 0])[0])

with open(OUT, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote {OUT}: {len(lines)} lines")
