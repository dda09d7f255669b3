"""How reports and the fragments docs include write numbers: percentages, megabytes, signed differences, counts in
words, so every page words a figure the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WORDS = {0: "none", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
         9: "nine", 10: "ten"}


def percent(value: float | None) -> str:
    """A fraction as a percentage with two decimals, `-` when missing."""
    return "-" if value is None else f"{100 * value:.2f}"


def megabytes(size: float) -> str:
    """Bytes as MB (10⁶) with two decimals."""
    return f"{size / 1e6:.2f}"


def signed(value: float, digits: int = 2) -> str:
    """+0.49 / −0.19, with a true minus sign (U+2212)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def in_words(count: int) -> str:
    """A small count as a word (`seven`), a larger one as digits."""
    return WORDS.get(count, str(count))


def the_one(found: Sequence[Any], what: str) -> Any:
    """The single element of `found`; ValueError naming `what` when there are none or several."""
    if len(found) != 1:
        raise ValueError(f"expected one {what}, found {len(found)}")
    return found[0]


def p_value(value: float | None) -> str:
    """A p-value as reports write it: 3 significant digits, `<0.001` below that, `-` when there is none."""
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def met(flag: bool) -> str:
    """A target's verdict in bold: **met** or **not met**."""
    return "**met**" if flag else "**not met**"
