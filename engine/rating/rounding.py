"""Rounding of exact costs (``Fraction``) to ``Decimal`` the way CGRateS names it.

Costs are accumulated as fractions so ``0.1/60s`` for 7 s is exact; rounding
happens once, on the total, with the DestinationRate's method and decimals.
The ``compat`` variants reproduce CGRateS's float-era rules (per-increment
rounding to 5 decimals, the 1e-7 tolerance of ``*up``) for bill-for-bill migrations.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from engine.tariffplan.model import ROUND_DOWN, ROUND_MIDDLE, ROUND_UP


def round_fraction(value: Fraction, decimals: int, method: str, *, compat: bool = False) -> Decimal:
    """Round ``value`` to ``decimals`` places: ``*up`` ceil, ``*down`` floor, ``*middle`` half-up.

    With ``compat`` ``*up`` ignores a remainder below 1e-7 (scaled), as
    CGRateS ``utils.Round`` does to hide float noise.
    """
    return round_scaled(value.numerator, value.denominator, decimals, method, compat=compat)


def round_scaled(numerator: int, denominator: int, decimals: int, method: str, *,
                 compat: bool = False) -> Decimal:
    """``round_fraction`` of ``numerator / denominator`` without building a Fraction (hot path)."""
    quotient, remainder = divmod(numerator * 10**decimals, denominator)
    if remainder:
        if method == ROUND_UP:
            if not compat or remainder * 10 ** max(7, decimals) >= denominator:
                quotient += 1
        elif method == ROUND_MIDDLE:
            if 2 * remainder >= denominator:
                quotient += 1
        elif method != ROUND_DOWN:
            raise ValueError(f"unknown rounding method {method!r}")
    return Decimal(quotient).scaleb(-decimals)


def half_up(value: Fraction, decimals: int) -> Fraction:
    """``*middle`` rounding kept as a Fraction (CGRateS per-increment rounding)."""
    scale = 10**decimals
    quotient, remainder = divmod(value.numerator * scale, value.denominator)
    if 2 * remainder >= value.denominator:
        quotient += 1
    return Fraction(quotient, scale)


def max_scaled_within(numerator: int, denominator: int, decimals: int, method: str, scale: int) -> int:
    """The largest raw total ``x`` (in ``1/scale`` units) whose rounded value stays within
    ``numerator / denominator``: ``round(x / scale, decimals, method) <= credit``.

    Integer arithmetic only (called per affordability check): with ``g`` the credit floored
    to the decimals grid, ``*up`` allows ``x / scale <= g``, ``*middle`` ``x / scale < g + ½
    step`` and ``*down`` ``x / scale < g + 1 step``.
    """
    grid = 10**decimals
    floor_grid = (numerator * grid) // denominator
    if method == ROUND_UP:
        return (floor_grid * scale) // grid
    if method == ROUND_MIDDLE:
        return -((-(2 * floor_grid + 1) * scale) // (2 * grid)) - 1
    return -((-(floor_grid + 1) * scale) // grid) - 1


def to_decimal(value: Fraction, places: int = 12) -> Decimal:
    """Display value of an exact fraction (for breakdowns, never re-used in arithmetic)."""
    rounded = round_fraction(value, places, ROUND_MIDDLE)
    return rounded.normalize() if rounded else Decimal(0)
