"""Moments of the variants over 10^7 draws, each within 6 standard errors (DESIGN.md §7):
Gaussian and Bernoulli inverted dropout both multiply by noise of mean 1 and variance
rate/(1-rate); alpha dropout keeps zero mean and unit variance; the Box-Muller normals
look normal and independent; channel masks are independent across channels."""
import math

import numpy as np
import pytest

import fastdrop

N = 10**7
SIGMAS = 6.0


def check_mean_and_variance(values, mean, variance, group=1):
    """Sample mean and variance of `values` against the expected ones.

    Consecutive runs of `group` values may be dependent (they share a channel's mask);
    the runs are iid, so standard errors come from the spread of per-run statistics.
    """
    v = values.astype(np.float64).reshape(-1, group)
    runs = v.shape[0]
    run_means = v.mean(axis=1)
    sample_mean = float(run_means.mean())
    se_mean = float(run_means.std()) / math.sqrt(runs)
    run_vars = ((v - sample_mean) ** 2).mean(axis=1)
    sample_var = float(run_vars.mean())
    se_var = float(run_vars.std()) / math.sqrt(runs)
    assert abs(sample_mean - mean) < SIGMAS * se_mean, (sample_mean, mean, se_mean)
    assert abs(sample_var - variance) < SIGMAS * se_var, (sample_var, variance, se_var)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("kind", ["gaussian", "bernoulli"])
def test_multiplicative_noise_has_mean_one_and_variance_rate_over_keep(kind, rate):
    ones = np.ones(N, np.float32)
    if kind == "gaussian":
        eps = fastdrop.gaussian_dropout(ones, rate, seed=2024, stream=1)
    else:
        eps = fastdrop.dropout(ones, rate, seed=2024, stream=1)
    check_mean_and_variance(eps, 1.0, rate / (1 - rate))


def test_gaussian_float64_noise_moments():
    eps = fastdrop.gaussian_dropout(np.ones(N), 0.5, seed=7)
    check_mean_and_variance(eps, 1.0, 1.0)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_zero_mean_and_unit_variance(rate):
    x = np.random.default_rng(11).standard_normal(N).astype(np.float32)
    y = fastdrop.alpha_dropout(x, rate, seed=99, stream=3)
    check_mean_and_variance(y, 0.0, 1.0)


def test_feature_alpha_dropout_keeps_zero_mean_and_unit_variance():
    x = np.random.default_rng(12).standard_normal((1000, 100, 100)).astype(np.float32)
    y = fastdrop.alpha_dropout(x, 0.3, seed=5, noise_shape=(1000, 100, 1))
    check_mean_and_variance(y, 0.0, 1.0, group=100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_muller_normals_look_standard_normal(dtype):
    z = (fastdrop.gaussian_dropout(np.ones(N, dtype), keep_prob=0.5, seed=31) - 1).astype(np.float64)
    # P(|z| < 1), P(|z| < 2), P(z < -3), P(z > 3) against the normal CDF
    for inside, p in [(1.0, math.erf(1 / math.sqrt(2))), (2.0, math.erf(2 / math.sqrt(2)))]:
        frac = np.mean(np.abs(z) < inside)
        assert abs(frac - p) < SIGMAS * math.sqrt(p * (1 - p) / N)
    tail = 0.5 * math.erfc(3 / math.sqrt(2))
    for frac in (np.mean(z < -3), np.mean(z > 3)):
        assert abs(frac - tail) < SIGMAS * math.sqrt(tail * (1 - tail) / N)
    # skewness and kurtosis of a normal: 0 and 3 (standard errors sqrt(6/N), sqrt(24/N))
    assert abs(np.mean(z**3)) < SIGMAS * math.sqrt(15 / N)
    assert abs(np.mean(z**4) - 3) < SIGMAS * math.sqrt(96 / N)


def correlation(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).mean() / math.sqrt((a * a).mean() * (b * b).mean()))


@pytest.mark.parametrize("lag", [1, 2, 3, 4, 64])
def test_gaussian_normals_uncorrelated(lag):
    """Lag 1 pairs the cosine and sine of one Box-Muller pair, which share r: still
    uncorrelated, and so are their squares (E[r^4 cos^2 sin^2] = 8 / 8 = E[z0^2] E[z1^2])."""
    z = fastdrop.gaussian_dropout(np.ones(N), keep_prob=0.5, seed=4) - 1
    bound = SIGMAS / math.sqrt(N)
    assert abs(correlation(z[:-lag], z[lag:])) < bound
    sq = z * z
    assert abs(correlation(sq[:-lag], sq[lag:])) < 3 * bound


def test_channel_masks_are_independent_bernoulli_per_channel():
    mask = fastdrop.sample_mask((10**4, 10**3, 7), 0.3, seed=6, noise_shape=(10**4, 10**3, 1))
    keep = mask.to_bool().reshape(-1).astype(np.float64)
    p = 0.7
    assert abs(keep.mean() - p) < SIGMAS * math.sqrt(p * (1 - p) / keep.size)
    assert abs(correlation(keep[:-1], keep[1:])) < SIGMAS / math.sqrt(keep.size)
