"""Intervals against plain references: exact binomial sums written out here, Wilson's formula from
its textbook example, and a bootstrap that must cover a known shift and not invent one."""
import numpy as np
import pytest

from triattn.core.stats import MIN_STEPS, binomial_interval, median_interval, paired_change, speed_verdict


def test_median_interval_of_five_is_min_to_max_at_its_real_level():
    iv = median_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (iv.value, iv.lo, iv.hi, iv.n) == (3.0, 1.0, 5.0, 5)
    assert iv.level == pytest.approx(1 - 2 / 32, abs=1e-4)  # 93.75%: 5 repeats cannot reach 95%


def test_median_interval_of_eleven_drops_the_outer_pair():
    # P(Bin(11, .5) <= 1) = 12/2048: 1 - 24/2048 = 98.8% >= 95%; P(<= 2) = 67/2048 -> 93.5% < 95%
    xs = list(range(11))
    iv = median_interval(xs)
    assert (iv.lo, iv.hi) == (1.0, 9.0)
    assert iv.level == pytest.approx(1 - 24 / 2048, abs=1e-4)


def test_wilson_interval_textbook_example():
    iv = binomial_interval(81, 263)  # Wilson's interval for 81/263: 0.2553 .. 0.3662
    assert iv.lo == pytest.approx(0.2553, abs=5e-4) and iv.hi == pytest.approx(0.3662, abs=5e-4)
    assert binomial_interval(0, 10).lo == pytest.approx(0.0, abs=1e-12)
    assert binomial_interval(10, 10).hi == pytest.approx(1.0, abs=1e-12)
    assert binomial_interval(0, 10).hi == pytest.approx(0.2775, abs=5e-4)  # Wilson: z^2 / (n + z^2)


def test_paired_change_finds_a_real_shift_through_shared_noise():
    rng = np.random.default_rng(1)
    machine = rng.lognormal(0, 0.4, 200)  # slow and fast moments hit both runs alike
    a = 10 * machine * rng.lognormal(0, 0.05, 200)
    b = 8 * machine * rng.lognormal(0, 0.05, 200)
    iv = paired_change(a, b)
    assert iv.lo < -0.2 < iv.hi and iv.excludes(0.0)
    assert "lower" in speed_verdict(iv)


def test_paired_change_does_not_invent_a_difference():
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(0, 0.5, 60), rng.lognormal(0, 0.5, 60)
    iv = paired_change(a, b)
    assert not iv.excludes(0.0)
    assert speed_verdict(iv).startswith("no measurable difference")


def test_paired_change_uses_the_common_length_and_refuses_too_few_steps():
    a = [1.0] * 50
    b = [2.0] * 20 + [100.0] * 30  # a long slow tail the shorter run never had
    assert paired_change(a, b[:20]).value == pytest.approx(1.0)
    assert paired_change(a, b[:MIN_STEPS - 1]) is None
    assert speed_verdict(None).startswith("too few decoded tokens")
