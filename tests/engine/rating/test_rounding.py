"""The affordability bound: the most raw cost whose rounded value a credit still covers."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rating.rounding import max_scaled_within, round_scaled

METHODS = ("*up", "*middle", "*down")


@settings(max_examples=400, deadline=None)
@given(st.fractions(min_value=0, max_value=1000, max_denominator=10**7), st.integers(0, 6),
       st.sampled_from(METHODS), st.integers(1, 6), st.integers(1, 7))
def test_bound_is_the_last_raw_total_the_credit_covers(credit: Fraction, decimals: int, method: str,
                                                       extra: int, factor: int) -> None:
    """Rounded at the bound the cost is within the credit; one unit more and it is not."""
    scale = 10 ** (decimals + extra) * factor
    limit = max_scaled_within(credit.numerator, credit.denominator, decimals, method, scale)
    assert round_scaled(limit, scale, decimals, method) <= credit
    assert round_scaled(limit + 1, scale, decimals, method) > credit


def test_bound_on_the_documented_cases() -> None:
    """0.62 at 4 decimals, scale 10^5: *up covers up to 0.62 itself, *middle up to 0.620049...,
    *down up to 0.620099...; a zero credit covers nothing that rounds up from above zero."""
    assert max_scaled_within(62, 100, 4, "*up", 10**5) == 62_000
    assert max_scaled_within(62, 100, 4, "*middle", 10**5) == 62_004
    assert max_scaled_within(62, 100, 4, "*down", 10**5) == 62_009
    assert max_scaled_within(0, 1, 2, "*up", 10**4) == 0
