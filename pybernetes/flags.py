"""Flag value parsers shared by every component and pbctl, with Kubernetes' spellings.

Each raises argparse.ArgumentTypeError (a ValueError), so `type=flags.duration` makes argparse print
"argument --sync-period: invalid duration '5x'" and exit 2. `format_duration` writes a duration back
(pybernetes.options.to_argv).
"""

from __future__ import annotations

import argparse
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str | float) -> float:
    """Go-style durations ("40s", "1m30s", "500ms") or plain seconds ("2.5") -> seconds."""
    if isinstance(text, int | float):
        return float(text)
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 30s, 1m30s, 500ms, 2h")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """The inverse of `duration`: 90 -> "1m30s", 300 -> "5m", 2.5 -> "2.5s" (what a command line shows)."""
    if seconds < 0 or "e" in repr(float(seconds)):
        return repr(float(seconds))  # plain seconds: `duration` takes them back
    if seconds != int(seconds):
        return f"{float(seconds)!r}s"
    s = int(seconds)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return text or "0s"


def boolean(text: str) -> bool:
    """true/false as Go's strconv.ParseBool takes them (plus yes/no, on/off)."""
    v = text.strip().lower()
    if v in ("1", "t", "true", "y", "yes", "on"):
        return True
    if v in ("0", "f", "false", "n", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}: use true or false")


def string_list(text: str) -> list[str]:
    """`a, b,,c` (--etcd-servers, --nodeport-addresses) -> ["a", "b", "c"]; "" -> []."""
    return [p.strip() for p in text.split(",") if p.strip()]


def key_values(text: str) -> dict[str, str]:
    """`a=1,b=2` (--node-labels and the like) -> {"a": "1", "b": "2"}; a key without `=` gets ""."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, _, v = part.partition("=")
        if not k:
            raise argparse.ArgumentTypeError(f"invalid key=value {part!r}: empty key")
        out[k] = v
    return out
