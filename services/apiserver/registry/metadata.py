"""What every kind shares about metadata and status: ObjectMeta, labels, annotations, finalizers, owner
references, label selectors and status conditions (apimachinery's api/validation and meta/v1/validation).

`validate_object_meta` and `validate_object_meta_update` run for every object (validation.validate);
the label, selector and condition rules are used by the kinds whose spec or status carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, GoValue, child, go_map, go_quote, go_strings, index
from services.apiserver.registry.formats import is_dns1123_label, is_label_value, is_qualified_name

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
CONDITION_STATUSES = ("True", "False", "Unknown")

NameFn = Callable[[str], list[str]]

def validate_labels(labels: Mapping[str, str], path: str, errs: Errs) -> None:
    for k in sorted(labels):
        errs.invalid_each(path, k, is_qualified_name(k))
        errs.invalid_each(path, labels[k], is_label_value(labels[k]))


def validate_annotations(annotations: Mapping[str, str], path: str, errs: Errs) -> None:
    total = 0
    for k in sorted(annotations):
        errs.invalid_each(path, k, is_qualified_name(k.lower()))
        total += len(k) + len(annotations[k].encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT)


def validate_finalizers(finalizers: Sequence[str], path: str, errs: Errs) -> None:
    for f in finalizers:
        msgs = is_qualified_name(f)
        errs.invalid_each(path, f, msgs)
        if not msgs and "/" not in f and f not in STANDARD_FINALIZERS:
            errs.invalid(path, f, "name is neither a standard finalizer name nor is it fully qualified")
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.invalid(path, go_strings(finalizers),
                     'finalizer "orphan" and "foregroundDeletion" cannot be both set')


def _validate_owner_references(refs: Sequence[meta.OwnerReference], path: str, errs: Errs) -> None:
    controllers = []
    for r in refs:
        if not r.api_version:
            errs.invalid(child(path, "apiVersion"), r.api_version, "version must not be empty")
        if not r.kind:
            errs.invalid(child(path, "kind"), r.kind, "kind must not be empty")
        if not r.name:
            errs.invalid(child(path, "name"), r.name, "name must not be empty")
        if not r.uid:
            errs.invalid(child(path, "uid"), r.uid, "uid must not be empty")
        if r.HasField("controller") and r.controller:
            controllers.append(f"{r.kind}/{r.name}")
    if len(controllers) > 1:
        errs.invalid(path, GoValue("[]v1.OwnerReference{...}"),
                     "Only one reference can have Controller set to true. Found \"true\" in references for "
                     + " and ".join(controllers))


def validate_object_meta(m: meta.ObjectMeta, *, namespaced: bool, name_fn: NameFn, path: str,
                         errs: Errs) -> None:
    """ValidateObjectMeta; `path` is "metadata" for objects, "spec.template.metadata" is not checked here."""
    if m.generate_name:
        # A generateName is a prefix: a trailing '-' is allowed (maskTrailingDash).
        prefix = m.generate_name[:-1] + "a" if len(m.generate_name) > 1 and m.generate_name.endswith("-") \
            else m.generate_name
        errs.invalid_each(child(path, "generateName"), m.generate_name, name_fn(prefix))
    if not m.name:
        errs.required(child(path, "name"), "name or generateName is required")
    else:
        errs.invalid_each(child(path, "name"), m.name, name_fn(m.name))
    if namespaced:
        if not m.namespace:
            errs.required(child(path, "namespace"))
        else:
            errs.invalid_each(child(path, "namespace"), m.namespace, is_dns1123_label(m.namespace))
    elif m.namespace:
        errs.forbidden(child(path, "namespace"), "not allowed on this type")
    errs.nonnegative(child(path, "generation"), m.generation)
    validate_labels(m.labels, child(path, "labels"), errs)
    validate_annotations(m.annotations, child(path, "annotations"), errs)
    _validate_owner_references(m.owner_references, child(path, "ownerReferences"), errs)
    validate_finalizers(m.finalizers, child(path, "finalizers"), errs)


def validate_object_meta_update(new: meta.ObjectMeta, old: meta.ObjectMeta, path: str, errs: Errs) -> None:
    errs.immutable(child(path, "name"), new.name, old.name)
    errs.immutable(child(path, "namespace"), new.namespace, old.namespace)
    # uid and creationTimestamp are server-owned; an update that omits them keeps the stored ones.
    if new.uid:
        errs.immutable(child(path, "uid"), new.uid, old.uid)
    if new.HasField("creation_timestamp") and old.HasField("creation_timestamp") \
            and new.creation_timestamp != old.creation_timestamp:
        errs.invalid(child(path, "creationTimestamp"), GoValue(_go_time(new.creation_timestamp)),
                     "field is immutable")


def _go_time(t: meta.Time) -> str:
    from pybernetes.api.codec import time_to_str  # codec is heavy; only for this rare message

    return time_to_str(t)


def go_label_selector(sel: meta.LabelSelector) -> GoValue:
    labels = go_map(sel.match_labels)
    if sel.match_expressions:
        exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{go_quote(e.key)}, Operator:{go_quote(e.operator)}, "
            f"Values:{go_strings(e.values)}}}" for e in sel.match_expressions) + "}"
    else:
        exprs = "[]v1.LabelSelectorRequirement(nil)"
    return GoValue(f"&v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")


def validate_label_selector(sel: meta.LabelSelector, path: str, errs: Errs) -> None:
    for i, e in enumerate(sel.match_expressions):
        p = index(child(path, "matchExpressions"), i)
        if e.operator in ("In", "NotIn"):
            if not e.values:
                errs.required(child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
        elif e.operator in ("Exists", "DoesNotExist"):
            if e.values:
                errs.forbidden(child(p, "values"),
                               "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            errs.invalid(child(p, "operator"), e.operator, "not a valid selector operator")
        errs.invalid_each(child(p, "key"), e.key, is_qualified_name(e.key))
        for j, v in enumerate(e.values):
            errs.invalid_each(index(child(p, "values"), j), v, is_label_value(v))
    validate_labels(sel.match_labels, child(path, "matchLabels"), errs)


def selector_matches(sel: meta.LabelSelector, labels: Mapping[str, str]) -> bool:
    for k, v in sel.match_labels.items():
        if labels.get(k) != v:
            return False
    for e in sel.match_expressions:
        has = e.key in labels
        if e.operator == "In" and not (has and labels[e.key] in e.values):
            return False
        if e.operator == "NotIn" and has and labels[e.key] in e.values:
            return False
        if e.operator == "Exists" and not has:
            return False
        if e.operator == "DoesNotExist" and has:
            return False
    return True


def validate_conditions(conditions: Iterable[Any], path: str, errs: Errs) -> None:
    for i, c in enumerate(conditions):
        if c.status not in CONDITION_STATUSES:
            errs.not_supported(child(index(path, i), "status"), c.status, CONDITION_STATUSES)
