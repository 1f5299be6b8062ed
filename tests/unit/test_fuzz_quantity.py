"""Property tests of quantities: any text parses to a Decimal or raises QuantityError; formats round-trip;
parsing keeps the order of the values."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from pybernetes.api import quantity
from tests.fuzzing import examples

_SUFFIXES = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "n", "u"]
_QUANTITY_ALPHABET = st.sampled_from([*"0123456789.+-eEKMGTPimnuk ", "\n", "١", "²"])


@examples(300)
@given(st.one_of(st.text(_QUANTITY_ALPHABET, max_size=30), st.text(max_size=30)))
@example("1e9999999")  # Decimal overflowed (decimal.Overflow, not QuantityError)
@example("1e" + "1" * 5000)  # int() refused the 5000-digit exponent (ValueError)
@example("١٢")  # \d matched Arabic-Indic digits: accepted, though Kubernetes refuses them
def test_parse_returns_a_decimal_or_raises_quantity_error(text: str) -> None:
    try:
        v = quantity.parse(text)
    except quantity.QuantityError:
        assert not quantity.is_valid(text)
        return
    assert isinstance(v, Decimal) and v.is_finite()
    assert quantity.is_valid(text)
    assert text.strip().isascii()
    quantity.milli_value(text)
    quantity.value(text)


@examples(200)
@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(_SUFFIXES))
def test_number_with_suffix_is_valid(n: int, suffix: str) -> None:
    assert quantity.is_valid(f"{n}{suffix}")


@examples(200)
@given(st.integers(min_value=0, max_value=2**62))
def test_format_bytes_round_trips(n: int) -> None:
    assert quantity.value(quantity.format_bytes(n)) == n


@examples(200)
@given(st.integers(min_value=0, max_value=10**9))
def test_format_cpu_milli_round_trips(milli: int) -> None:
    assert quantity.milli_value(quantity.format_cpu_milli(milli)) == milli


@examples(200)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(_SUFFIXES),
       st.integers(min_value=0, max_value=10**6), st.sampled_from(_SUFFIXES))
def test_parse_keeps_order(a: int, sa: str, b: int, sb: str) -> None:
    """Suffixes scale exactly: the order of the parsed values is the order of the scaled integers."""
    scale = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10,
             "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "n": Decimal("1e-9"), "u": Decimal("1e-6")}
    qa, qb = quantity.parse(f"{a}{sa}"), quantity.parse(f"{b}{sb}")
    assert (qa < qb) == (a * scale[sa] < b * scale[sb])
    assert (qa == qb) == (a * scale[sa] == b * scale[sb])
    if qa <= qb:
        assert quantity.milli_value(f"{a}{sa}") <= quantity.milli_value(f"{b}{sb}")
