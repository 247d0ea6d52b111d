"""Error bars of correlated time series (fe2qc.statistics), against analytic AR(1) results.

Reference process (unit variance, stationary from the first sample):
x_t = φ x_{t-1} + sqrt(1 - φ²) ε_t, x_0 = ε_0. Its autocorrelation is φ^t, so

* statistical inefficiency g = (1 + φ)/(1 - φ);
* the variance of a mean over b consecutive samples is
  v_b = [g - 2φ(1 - φ^b) / (b (1 - φ)²)] / b (exact), and the variance of the mean of the
  whole series is v_N;
* Flyvbjerg-Petersen level j (blocks of b = 2^j, n = N/b of them) estimates
  se_j² = c_j/(n - 1) with c_j the biased variance of the block means, whose expectation is
  exactly (v_b - v_N)/(n - 1) (E[biased variance] = variance - variance of the mean).
* two AR(1) series with the same φ driven by noises of correlation ρ have cov(x, y) = ρ, and the
  centred products p = x y have autocorrelation φ^{2t}: g_p = (1 + φ²)/(1 - φ²) and
  Var(cov estimate) ≈ (1 + ρ²) g_p / N.

Tolerances come from the estimators' own scatter: every check runs COLS independent columns
(fixed seeds) and compares the column average with the analytic value within 4 standard errors
of that average (the spread over columns / sqrt(COLS)). Where an estimator has a known
systematic bias it is added and named: pymbar's truncation of the autocorrelation sum keeps
positive noise past ``mintime`` (g - 1 ≈ 2.7/sqrt(N) for white noise; we allow 4 sqrt(g/N)
on g).
"""

import numpy as np
import pytest

from fe2qc.errors import InputError
from fe2qc.statistics import (
    block_average,
    covariance_error,
    covariance_series,
    detect_equilibration,
    mean_error,
    statistical_inefficiency,
)

N = 4096
COLS = 32


def ar1(phi, n, cols, seed, noise=None):
    """Unit-variance stationary AR(1) columns (n, cols); ``noise`` overrides the ε draws."""
    e = np.random.default_rng(seed).standard_normal((n, cols)) if noise is None else noise
    x = np.empty_like(e)
    x[0] = e[0]
    s = np.sqrt(1.0 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + s * e[t]
    return x


def v_block(phi, b):
    """Exact variance of the mean of b consecutive samples of the unit AR(1) process."""
    g = (1 + phi) / (1 - phi)
    return (g - 2 * phi * (1 - phi**b) / (b * (1 - phi) ** 2)) / b


def within(values, ref, extra=0.0, k=4.0):
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - ref) < k * se + extra, (values.mean(), ref, se, extra)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ar1_statistical_inefficiency(phi):
    x = ar1(phi, N, COLS, seed=11)
    g_true = (1 + phi) / (1 - phi)
    g = statistical_inefficiency(x)
    assert g.shape == (COLS,) and np.all(g >= 1.0)
    within(g, g_true, extra=4 * np.sqrt(g_true / N))
    assert statistical_inefficiency(x[:, 3]) == pytest.approx(g[3], rel=1e-12)  # 1-D = column


def _pymbar_loop_g(A_n, mintime=3):
    """Compute g with the loop of pymbar's ``timeseries.statistical_inefficiency`` (fast=False)."""
    N = A_n.size
    dA = A_n - A_n.mean()
    sigma2 = (dA * dA).mean()
    g, t = 1.0, 1
    while t < N - 1:
        C = np.sum(dA[0 : N - t] * dA[t:N]) / (float(N - t) * sigma2)
        if C <= 0.0 and t > mintime:
            break
        g += 2.0 * C * (1.0 - float(t) / float(N))
        t += 1
    return max(g, 1.0)


@pytest.mark.parametrize(("phi", "n"), [(0.0, 5), (0.5, 300), (0.99, 2000), (0.999, 500)])
def test_statistical_inefficiency_equals_pymbar_loop(phi, n):
    # lags summed directly, and (phi >= 0.99: no zero crossing within 64 lags) by FFT
    x = ar1(phi, n, 4, seed=19)
    ref = [_pymbar_loop_g(x[:, c]) for c in range(4)]
    assert np.allclose(statistical_inefficiency(x), ref, rtol=1e-12)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ar1_blocking_levels_match_exact_expectation(phi):
    x = ar1(phi, N, COLS, seed=12)
    b = block_average(x)
    assert list(b.block_sizes[:4]) == [1, 2, 4, 8] and list(b.n_blocks[:4]) == [N, N // 2,
                                                                                N // 4, N // 8]
    assert np.allclose(b.mean, x.mean(axis=0))
    g_true = (1 + phi) / (1 - phi)
    checked = spread_checked = 0
    for j, (size, n) in enumerate(zip(b.block_sizes, b.n_blocks, strict=True)):
        if n < 32:
            break
        expected = (v_block(phi, size) - v_block(phi, N)) / (n - 1)
        within(b.stderr_levels[j] ** 2, expected)
        # where blocks are nearly independent (b >= 4 g), the quoted uncertainty of a level is
        # the scatter of its estimate over columns (32 columns: the spread is known to ~13 %)
        if size >= 4 * g_true:
            rel_spread = b.stderr_levels[j].std(ddof=1) / b.stderr_levels[j].mean()
            rel_quoted = (b.stderr_levels_err[j] / b.stderr_levels[j]).mean()
            assert 0.6 < rel_spread / rel_quoted < 1.6
            spread_checked += 1
        checked += 1
    assert checked >= 7 and spread_checked >= 1
    # the selected level decorrelates: the longer the correlation, the larger the blocks
    assert np.median(b.level) == 0 if phi == 0 else np.median(b.level) >= 3
    assert np.all(b.plateau)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_ar1_mean_error_is_calibrated(phi):
    x = ar1(phi, N, COLS, seed=13)
    r = mean_error(x, equilibrate=False)
    true_se = np.sqrt(v_block(phi, N))
    g_true = (1 + phi) / (1 - phi)
    # stderr vs the exact standard error of the mean; bias allowance: the g estimate's
    # truncation bias (4 sqrt(g/N) on g, i.e. half that relative to g on the standard error)
    within(r.stderr / true_se, 1.0, extra=2 * np.sqrt(g_true / N) / g_true + 0.01)
    within(r.n_eff, N / g_true, extra=N / g_true * 4 * np.sqrt(g_true / N) / g_true)
    # the error bars cover the true mean 0: sum of z² over 32 columns is chi² with 32 dof
    z2 = np.sum((r.mean / r.stderr) ** 2)
    assert 11.98 < z2 < 65.0  # chi2(32) 0.05 % and 99.95 % quantiles
    assert r.warning is None and r.t0 == 0 and r.n_samples == N
    one = mean_error(x[:, 5], equilibrate=False)
    assert one.mean == pytest.approx(r.mean[5], rel=1e-12)
    assert one.stderr == pytest.approx(r.stderr[5], rel=1e-12)


def test_uncorrelated_stderr_is_sigma_over_sqrt_n():
    sigma, n = 2.5, 10000
    x = 3.0 + sigma * np.random.default_rng(14).standard_normal(n)
    b = block_average(x)
    assert b.level == 0 and b.plateau
    assert b.stderr == pytest.approx(np.std(x, ddof=1) / np.sqrt(n), rel=1e-12)
    assert b.stderr == pytest.approx(sigma / np.sqrt(n), rel=4 / np.sqrt(2 * n))
    r = mean_error(x)
    assert r.stderr == pytest.approx(sigma / np.sqrt(n), rel=0.05)
    assert r.n_eff > 0.9 * n and abs(r.mean - 3.0) < 4 * r.stderr and r.warning is None


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_detect_equilibration_discards_transient(seed):
    n, tau, amp = 5000, 100.0, 10.0
    t = np.arange(n)
    x = ar1(0.5, n, 1, seed)[:, 0] + amp * np.exp(-t / tau)
    eq = detect_equilibration(x)
    # t0 trades a residual transient against lost samples: before 2 tau the leftover bias
    # (amp tau e^{-2}/n = 0.03) would exceed the error bar (0.025); by 15 tau it is long gone
    assert 2 * tau <= eq.t0 <= 15 * tau
    assert eq.n_eff == pytest.approx((n - eq.t0) / eq.g)
    r = mean_error(x)
    assert r.t0 == eq.t0 and r.n_samples == n - eq.t0
    assert abs(r.mean) < 4 * r.stderr  # unbiased (true mean 0) within its error bar
    assert r.warning is None
    # without the cut the transient biases the mean by amp*tau/n = 0.2, ~8 error bars
    biased = mean_error(x, equilibrate=False)
    assert abs(biased.mean) > 4 * r.stderr


def test_detect_equilibration_stationary_and_constant():
    x = ar1(0.5, 4000, 1, seed=24)[:, 0]
    assert detect_equilibration(x).t0 <= 400  # nothing to discard in a stationary series
    c = detect_equilibration(np.full(50, 1.5))
    assert (c.t0, c.g, c.n_eff) == (0, 1.0, 50.0)
    r = mean_error(np.full(50, 1.5))
    assert (r.mean, r.stderr, r.g) == (1.5, 0.0, 1.0) and r.warning is None


def test_covariance_error_two_correlated_ar1_series():
    phi, rho = 0.8, 0.6
    rng = np.random.default_rng(15)
    e1 = rng.standard_normal((N, COLS))
    e2 = rho * e1 + np.sqrt(1 - rho**2) * rng.standard_normal((N, COLS))
    x, y = ar1(phi, N, COLS, 0, noise=e1), ar1(phi, N, COLS, 0, noise=e2)
    g_p = (1 + phi**2) / (1 - phi**2)
    true_se = np.sqrt((1 + rho**2) * g_p / N)
    covs, ses, gs = np.empty(COLS), np.empty(COLS), np.empty(COLS)
    for c in range(COLS):
        r = covariance_error(x[:, c], y[:, c], equilibrate=False)
        covs[c], ses[c], gs[c] = r.cov, r.stderr, r.g
    within(gs, g_p, extra=4 * np.sqrt(g_p / N))
    assert r.cov == pytest.approx(np.cov(x[:, -1], y[:, -1])[0, 1], rel=1e-12)
    within(covs, rho)
    assert covs.std(ddof=1) == pytest.approx(true_se, rel=4 / np.sqrt(2 * (COLS - 1)))
    within(ses / true_se, 1.0, extra=2 * np.sqrt(g_p / N) / g_p + 0.01)
    # matrix form: columns (x, y) give the 2x2 covariance matrix with the same entries
    m = covariance_error(np.column_stack([x[:, -1], y[:, -1]]), equilibrate=False)
    assert m.cov.shape == (2, 2) and m.cov[0, 1] == pytest.approx(r.cov, rel=1e-12)
    assert m.stderr[1, 0] == pytest.approx(r.stderr, rel=1e-12)
    assert np.allclose(m.cov, np.cov(x[:, -1], y[:, -1]))
    p = covariance_series(x[:, -1], y[:, -1])
    assert p.mean() * N / (N - 1) == pytest.approx(r.cov, rel=1e-12)


def test_too_short_run_warns():
    x = ar1(0.95, 200, 1, seed=16)[:, 0]  # g = 39: about 5 independent samples
    r = mean_error(x, label="C11")
    assert r.warning is not None and "run too short" in r.warning and "C11" in r.warning
    assert "N_eff" in r.warning and r.n_eff < 20
    c = covariance_error(x[:60], ar1(0.95, 60, 1, seed=30)[:, 0])
    assert c.warning is not None and "run too short" in c.warning and c.n_eff < 20
    b = block_average(x)
    assert not b.plateau  # the correlation outlives every level with 16 blocks
    assert mean_error(np.random.default_rng(18).standard_normal(2000)).warning is None


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([1.0, np.nan, 2.0, 3.0, 4.0], "non-finite.*index 1"),
        ([1.0, 2.0, np.inf, 3.0, 4.0], "non-finite"),
        ([], "empty"),
        ([1.0, 2.0], "2 samples"),
        (np.zeros((5, 2, 2)), "shape"),
        (3.0, "scalar"),
        (["a", "b", "c", "d"], "not an array of numbers"),
    ],
)
def test_bad_input_is_refused(bad, match):
    for f in (block_average, statistical_inefficiency, detect_equilibration, mean_error,
              covariance_error):
        with pytest.raises(InputError, match=match):
            f(bad)


def test_covariance_of_different_lengths_is_refused():
    with pytest.raises(InputError, match="different numbers of samples"):
        covariance_error(np.arange(10.0), np.arange(11.0))
