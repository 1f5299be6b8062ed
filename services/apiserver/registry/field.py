"""Field paths, Go-formatted values and the error list every validation rule writes to.

Kubernetes' `field.Path`/`field.ErrorList` (apimachinery util/validation/field): a path is what Kubernetes
prints (`spec.template.spec.containers[0].image`), a value is printed as Go's %#v would, and `Errs` collects
FieldErrors with Kubernetes' messages ("Required value", "Invalid value: \"x\": ...").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pybernetes.errors import FieldError


def child(path: str, *names: str) -> str:
    for n in names:
        path = f"{path}.{n}" if path else n
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


class GoValue(str):
    """A value already formatted the way Go's %#v would print it (structs, maps)."""


def go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def go_map(m: Mapping[str, str]) -> GoValue:
    if not m:
        return GoValue("map[string]string(nil)")
    return GoValue("map[string]string{" + ", ".join(f"{go_quote(k)}:{go_quote(m[k])}" for k in sorted(m)) + "}")


def go_strings(vs: Iterable[str]) -> GoValue:
    items = list(vs)
    if not items:
        return GoValue("[]string(nil)")
    return GoValue("[]string{" + ", ".join(go_quote(v) for v in items) + "}")


def fmt_value(v: Any) -> str:
    if isinstance(v, GoValue):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return go_quote(v)
    if v is None:
        return "null"
    return str(v)


class Errs(list[FieldError]):
    def required(self, path: str, detail: str = "") -> None:
        self.append(FieldError(path, _with("Required value", detail), "FieldValueRequired"))

    def invalid(self, path: str, value: Any, detail: str = "") -> None:
        self.append(FieldError(path, _with(f"Invalid value: {fmt_value(value)}", detail), "FieldValueInvalid"))

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        detail = "supported values: " + ", ".join(go_quote(s) for s in supported)
        self.append(FieldError(path, f"Unsupported value: {fmt_value(value)}: {detail}", "FieldValueNotSupported"))

    def duplicate(self, path: str, value: Any) -> None:
        self.append(FieldError(path, f"Duplicate value: {fmt_value(value)}", "FieldValueDuplicate"))

    def not_found(self, path: str, value: Any) -> None:
        self.append(FieldError(path, f"Not found: {fmt_value(value)}", "FieldValueNotFound"))

    def forbidden(self, path: str, detail: str) -> None:
        self.append(FieldError(path, _with("Forbidden", detail), "FieldValueForbidden"))

    def too_long(self, path: str, max_bytes: int) -> None:
        self.append(FieldError(path, f"Too long: may not be more than {max_bytes} bytes", "FieldValueTooLong"))

    def too_many(self, path: str, n: int, limit: int) -> None:
        self.append(FieldError(path, f"Too many: {n}: must have at most {limit} items", "FieldValueTooMany"))

    def invalid_each(self, path: str, value: Any, msgs: Iterable[str]) -> None:
        for m in msgs:
            self.invalid(path, value, m)

    def immutable(self, path: str, new: Any, old: Any) -> None:
        if new != old:
            self.invalid(path, new, "field is immutable")

    def nonnegative(self, path: str, value: int) -> None:
        if value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")


def _with(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head
