"""The masks behave like independent Bernoulli(keep_prob) draws: kept fraction, no
correlation between neighbouring elements, streams or seeds, and E[y] = x."""
import math

import numpy as np
import pytest

import fastdrop

N = 10**7
SIGMAS = 6.0


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_kept_fraction_within_six_sigma(rate):
    keep_prob = 1 - rate
    mask = fastdrop.sample_mask(N, rate, seed=2024, stream=1)
    sigma = math.sqrt(keep_prob * (1 - keep_prob) / N)
    assert abs(mask.count() / N - keep_prob) < SIGMAS * sigma


def correlation(a, b):
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).mean() / math.sqrt((a * a).mean() * (b * b).mean()))


@pytest.mark.parametrize("lag", [1, 2, 3, 4, 5, 64])
def test_neighbouring_elements_uncorrelated(lag):
    keep = fastdrop.sample_mask(N, 0.5, seed=31337).to_bool()
    # For independent draws the sample correlation has standard deviation ~ 1/sqrt(n).
    assert abs(correlation(keep[:-lag], keep[lag:])) < SIGMAS / math.sqrt(N - lag)


@pytest.mark.parametrize("other", [dict(stream=1), dict(seed=8), dict(offset=1)])
def test_neighbouring_streams_seeds_and_offsets_uncorrelated(other):
    base = dict(seed=7, stream=0, offset=0)
    a = fastdrop.sample_mask(N, 0.5, **base).to_bool()
    b = fastdrop.sample_mask(N, 0.5, **{**base, **other}).to_bool()
    assert abs(correlation(a, b)) < SIGMAS / math.sqrt(N)


def test_words_are_uniform_across_the_threshold_range():
    # Counts below many thresholds at once: each is a Binomial(n, T / 2**32).
    n = 2 * 10**6
    words = fastdrop.reference.random_words(12, 34, 0, n)
    for keep_prob in np.linspace(0.05, 0.95, 19):
        expected = keep_prob * n
        sigma = math.sqrt(n * keep_prob * (1 - keep_prob))
        assert abs(np.count_nonzero(words < np.uint64(math.floor(keep_prob * 2**32))) - expected) < SIGMAS * sigma


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_inverted_dropout_is_unbiased(rate):
    keep_prob = 1 - rate
    x = np.full(N, 1.0, dtype=np.float64)
    y = fastdrop.dropout(x, rate, seed=99)
    sigma = math.sqrt((1 - keep_prob) / keep_prob / N)  # sd of mean(m / keep_prob)
    assert abs(y.mean() - 1.0) < SIGMAS * sigma
