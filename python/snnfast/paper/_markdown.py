"""Formatting helpers of the study's Markdown reports (numbers, differences, tables)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["diff", "num", "paper", "pct", "ratio", "sig", "table"]


def num(x: float | None, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, or a dash."""
    return "—" if x is None else f"{x:.{digits}f}"


def pct(x: float) -> str:
    """A fraction as a percentage with two decimals."""
    return f"{100 * x:.2f}"


def diff(ours: float | None, paper: float | None) -> str:
    """``ours - paper`` with a sign, or a dash."""
    if ours is None or paper is None:
        return "—"
    return f"{ours - paper:+.2f}"


def ratio(ours: float | None, paper: float | None) -> str:
    """``ours / paper`` to three significant digits, or a dash."""
    if ours is None or paper is None or paper == 0:
        return "—"
    return f"{ours / paper:.3g}×"


def paper(x: float) -> str:
    """A paper number as printed (no rounding)."""
    return f"{x:g}"


def sig(x: float | None, unit: float = 1.0) -> str:
    """``x * unit`` to four significant digits, or a dash."""
    return "—" if x is None else f"{x * unit:.4g}"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines."""
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out
