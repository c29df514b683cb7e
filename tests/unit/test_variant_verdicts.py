"""The verdict rule and the sample sizes, against textbook figures (z from a normal table)."""

from __future__ import annotations

import math

import pytest

from sinks.variant_verdicts import (
    Call,
    VerdictSettings,
    call,
    family_alpha,
    mean_sample_size,
    proportion_sample_size,
)

Z_975, Z_80 = 1.959964, 0.841621  # normal table: 97.5th and 80th percentiles


def test_bonferroni_over_the_campaigns_variants() -> None:
    assert family_alpha(2, 0.05) == 0.05  # one test: A against B is B against A
    assert family_alpha(3, 0.05) == pytest.approx(0.05 / 3)
    assert family_alpha(5, 0.05) == pytest.approx(0.01)


def test_proportion_sample_size_is_the_textbook_one() -> None:
    # 10 % against 11 %: (1.96 + 0.84)^2 (0.1 x 0.9 + 0.11 x 0.89) / 0.01^2
    expected = (Z_975 + Z_80) ** 2 * (0.1 * 0.9 + 0.11 * 0.89) / 0.01**2
    assert proportion_sample_size(0.10, 0.10, 0.05, 0.8) == math.ceil(expected)
    assert proportion_sample_size(0.0, 0.10, 0.05, 0.8) is None  # no rate to lift


def test_mean_sample_size_is_the_textbook_one() -> None:
    expected = (Z_975 + Z_80) ** 2 * (12.0**2 + 9.0**2) / 0.5**2
    assert mean_sample_size(12.0, 9.0, 0.5, 0.05, 0.8) == math.ceil(expected)
    assert mean_sample_size(0.0, 0.0, 0.5, 0.05, 0.8) is None  # nothing varies
    assert mean_sample_size(1.0, 1.0, 0.0, 0.05, 0.8) is None  # nothing to find


def test_a_call_needs_the_sample_and_the_significance() -> None:
    assert call(2.5, 0.012, 0.05, enough=True) is Call.WINNER
    assert call(-2.5, 0.012, 0.05, enough=True) is Call.LOSER
    assert call(2.5, 0.012, 0.05 / 3, enough=True) is Call.WINNER
    assert call(2.2, 0.028, 0.05 / 3, enough=True) is Call.UNDECIDED  # not below alpha / 3
    assert call(2.5, 0.012, 0.05, enough=False) is Call.UNDECIDED
    assert call(None, None, 0.05, enough=True) is Call.UNDECIDED


def test_settings_refuse_what_has_no_meaning() -> None:
    with pytest.raises(ValueError):
        VerdictSettings(alpha=1.5)
    with pytest.raises(ValueError):
        VerdictSettings(mde=0)
