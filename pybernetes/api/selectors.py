"""Label and field selectors with Kubernetes' syntax and meaning.

Label selectors: `app=web`, `tier!=db`, `env in (a,b)`, `env notin (c)`, `gpu`, `!gpu`, comma = AND.
Field selectors: `metadata.name=x`, `spec.nodeName!=n1` over the few fields each kind exposes.
The apiserver filters lists and watches with them; controllers build them from LabelSelector messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.errors import BadRequest

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        # != and notin match objects without the label too, as Kubernetes does
        return not has or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{next(iter(self.values))}"
        return f"{self.key} {self.op} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a selector that matches nothing (nil LabelSelector in some APIs)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")


def _check_key(key: str, text: str) -> None:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise BadRequest(f"unable to parse requirement: invalid label key {key!r} in selector {text!r}")


def _check_value(value: str, text: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise BadRequest(f"unable to parse requirement: invalid label value {value!r} in selector {text!r}")


def parse_label_selector(text: str) -> LabelSelector:
    reqs: list[Requirement] = []
    for part in _split_top(text or ""):
        m = _SET_RE.match(part)
        if m:
            key, op = m.group(1), m.group(2)
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            _check_key(key, text)
            for v in values:
                _check_value(v, text)
            reqs.append(Requirement(key, op, values))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key, text)
            reqs.append(Requirement(key, "!"))
            continue
        for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
            if token in part:
                key, _, value = part.partition(token)
                key, value = key.strip(), value.strip()
                _check_key(key, text)
                _check_value(value, text)
                reqs.append(Requirement(key, op, frozenset([value])))
                break
        else:
            _check_key(part, text)
            reqs.append(Requirement(part, "exists"))
    return LabelSelector(tuple(reqs))


def from_match_labels(labels: Mapping[str, str]) -> LabelSelector:
    return LabelSelector(tuple(Requirement(k, "=", frozenset([v])) for k, v in sorted(labels.items())))


_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def from_message(sel: meta.LabelSelector | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: an empty selector matches everything."""
    if sel is None:
        return NOTHING
    reqs = [Requirement(k, "=", frozenset([v])) for k, v in sorted(sel.match_labels.items())]
    for e in sel.match_expressions:
        op = _OPS.get(e.operator)
        if op is None:
            raise BadRequest(f"{e.operator!r} is not a valid label selector operator")
        reqs.append(Requirement(e.key, op, frozenset(e.values)))
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str

    def __str__(self) -> str:
        # "a" "=" "=b" printed as "a==b" would parse back as a=b: "==" keeps a leading "=" in the value.
        op = "==" if self.op == "=" and self.value.startswith("=") else self.op
        return f"{self.field}{op}{self.value}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            have = fields.get(r.field, "")
            if (have == r.value) != (r.op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def value_of(self, field: str) -> str | None:
        """The value a selector pins `field` to with '=', if any (used to narrow watches)."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(map(str, self.requirements))


_FIELD_OP = re.compile(r"!=|==|=")


def parse_field_selector(text: str, allowed: frozenset[str] | None = None) -> FieldSelector:
    reqs: list[FieldRequirement] = []
    for part in _split_top(text or ""):
        # The first operator splits the term, as Kubernetes' splitTerm does: "a=b!=c" is a = "b!=c".
        m = _FIELD_OP.search(part)
        if m is None:
            raise BadRequest(f"invalid field selector: {part!r} (expected field=value or field!=value)")
        field, value = part[:m.start()].strip(), part[m.end():].strip()
        if field.endswith("!"):  # "a! =b" would print as "a!=b", another selector
            raise BadRequest(f"invalid field selector: {part!r} (expected field=value or field!=value)")
        if allowed is not None and field not in allowed:
            raise BadRequest(f'field label not supported: "{field}"')
        reqs.append(FieldRequirement(field, "!=" if m.group() == "!=" else "=", value))
    return FieldSelector(tuple(reqs))
