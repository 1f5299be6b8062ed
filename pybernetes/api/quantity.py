"""Kubernetes resource quantities ("100m", "64Mi", "1.5", "2e3"): parse, compare, format.

Used by validation (is it a quantity at all?), the scheduler (requests vs allocatable) and the kubelet
(cgroup limits). Values are exact Decimals; cpu is usually compared in millicores, memory in bytes.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
# ASCII digits only (\d alone matches any Unicode digit), and no newline before the end (\Z, not $).
_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?\Z",
                 re.ASCII)
# Kubernetes' quantities stop well inside these; beyond them Decimal overflows or int() refuses the digits.
_MAX_EXPONENT = 1000
_MAX_DIGITS = 1000


class QuantityError(ValueError):
    pass


def parse(text: str | int | float) -> Decimal:
    """The exact value of a quantity string; raises QuantityError naming the expected form."""
    if isinstance(text, bool):
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    if isinstance(text, int | float):
        return Decimal(str(text))
    m = _RE.match(text.strip())
    if not m or len(text) > _MAX_DIGITS:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation as e:  # pragma: no cover - the regex already guards this
        raise QuantityError(str(e)) from None
    suffix, exponent = m.group(2), m.group(3)
    if exponent is not None:
        if abs(int(exponent)) > _MAX_EXPONENT:
            raise QuantityError(f"quantity exponent {exponent} is too large")
        return number * (Decimal(10) ** int(exponent))
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix or ""]


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except QuantityError:
        return False
    return True


def milli_value(text: str | int | float) -> int:
    """In thousandths, rounded up (cpu "100m" -> 100, "1" -> 1000)."""
    return int((parse(text) * 1000).to_integral_value(rounding=ROUND_CEILING))


def value(text: str | int | float) -> int:
    """Whole units, rounded up (memory "64Mi" -> 67108864)."""
    return int(parse(text).to_integral_value(rounding=ROUND_CEILING))


def format_cpu_milli(milli: int) -> str:
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"


def format_bytes(n: int) -> str:
    """Largest exact binary suffix, as Kubernetes prints memory ("128Mi")."""
    for suffix, factor in reversed(_BINARY.items()):
        if n and n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)
