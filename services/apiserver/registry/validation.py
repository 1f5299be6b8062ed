"""Server-side validation of every registered kind, in Kubernetes' words and field paths.

`validate(obj)` is create validation, `validate(obj, old=old)` update validation (the create rules on
the new object plus Kubernetes' update rules: immutable fields, what a pod update may change, ...),
`validate_status_update(obj, old)` the status subresource's. Each returns FieldErrors whose `path` is
what Kubernetes prints (`spec.template.spec.containers[0].image`) and whose message is the rest of
Kubernetes' line ("Required value", "Invalid value: \"x\": ..."). Objects are expected to be defaulted
(defaults.apply_defaults) first, as the apiserver does. Besides the hand-written rules, every field
marked `[(pybernetes.api.meta.v1.required) = true]` in the protos is checked generically.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pybernetes.api import quantity, registry
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.meta.v1 import options_pb2
from pybernetes.errors import FieldError

# -- paths ---------------------------------------------------------------------------------------------


def child(path: str, *names: str) -> str:
    for n in names:
        path = f"{path}.{n}" if path else n
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# -- values as Go's fmt prints them ---------------------------------------------------------------------


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


# -- the collector -------------------------------------------------------------------------------------


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


# -- names ---------------------------------------------------------------------------------------------

def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


EMPTY_ERROR = "must be non-empty"

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                     "and must start and end with an alphanumeric character")
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                         "'-' or '.', and must start and end with an alphanumeric character")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                     "an alphabetic character, and end with an alphanumeric character")
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                      "with an alphanumeric character")
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                   "'.', and must start and end with an alphanumeric character")
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"

_DNS1123_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL = re.compile(f"^{DNS1035_LABEL_FMT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")
_CONFIG_KEY = re.compile(f"^{CONFIG_KEY_FMT}$")
_PERCENT = re.compile(r"^[0-9]+%$")


def is_dns1123_label(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL.match(v):
        errs.append(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN.match(v):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL.match(v):
        errs.append(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(v: str) -> list[str]:
    errs: list[str] = []
    parts = v.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY_ERROR)
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    else:
        return ["a qualified name " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                  "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME.match(name):
        errs.append("name part " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                               "123-abc"))
    return errs


def is_label_value(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE.match(v):
        errs.append(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_config_map_key(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY.match(v):
        errs.append(regex_error(CONFIG_KEY_MSG, CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if v == ".":
        errs.append("must not be '.'")
    elif v == "..":
        errs.append("must not be '..'")
    elif v.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_relaxed_env_var_name(v: str) -> list[str]:
    if not v:
        return ["environment variable name " + EMPTY_ERROR]
    if any(not (32 <= ord(ch) < 127) or ch == "=" for ch in v):
        return ["a valid environment variable name must consist only of printable ASCII characters other than '='"]
    return []


def is_valid_port_num(p: int) -> list[str]:
    return [] if 1 <= p <= 65535 else ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(p: str) -> list[str]:
    errs = []
    if len(p) > 15:
        errs.append(max_len_error(15))
    if not re.fullmatch(r"[-a-z0-9]+", p):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", p):
        errs.append("must contain at least one letter (a-z)")
    if "--" in p:
        errs.append("must not contain consecutive hyphens")
    if p and (p[0] == "-" or p[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(v: str) -> list[str]:
    if _PERCENT.match(v):
        return []
    return [regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%", "1%", "93%")]


def is_valid_ip(v: str) -> list[str]:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def is_valid_cidr(v: str) -> list[str]:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    if "/" not in v:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    return []


# ======================================================================================================
# Object metadata
# ======================================================================================================

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
MAX_INT32 = 2**31 - 1

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


def _validate_finalizers(finalizers: Sequence[str], path: str, errs: Errs) -> None:
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
    _validate_finalizers(m.finalizers, child(path, "finalizers"), errs)


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


# ======================================================================================================
# Label selectors
# ======================================================================================================

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


# ======================================================================================================
# Pod spec
# ======================================================================================================

PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_VOLUME_SOURCES = (("host_path", "hostPath"), ("empty_dir", "emptyDir"), ("secret", "secret"), ("nfs", "nfs"),
                   ("persistent_volume_claim", "persistentVolumeClaim"), ("downward_api", "downwardAPI"),
                   ("config_map", "configMap"), ("projected", "projected"), ("csi", "csi"),
                   ("ephemeral", "ephemeral"), ("image", "image"))
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                    "BlockDevice")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def validate_port_num_or_name(port: meta.IntOrString, path: str, errs: Errs) -> None:
    if port.type == 0:
        errs.invalid_each(path, port.int_val, is_valid_port_num(port.int_val))
    else:
        errs.invalid_each(path, port.str_val, is_valid_port_name(port.str_val))


def _validate_mode(mode: int, path: str, errs: Errs) -> None:
    if mode < 0 or mode > 0o777:
        errs.invalid(path, mode, FILE_MODE_MSG)


def _validate_local_descending_path(p: str, path: str, errs: Errs) -> None:
    if p.startswith("/"):
        errs.invalid(path, p, "must be a relative path")
    if ".." in p.split("/"):
        errs.invalid(path, p, "must not contain '..'")


def _validate_volume_file(it: core.KeyToPath | core.DownwardAPIVolumeFile, p: str, errs: Errs) -> None:
    """The path and mode of one file a volume writes (configMap/secret items, downwardAPI items)."""
    if not it.path:
        errs.required(child(p, "path"))
    else:
        _validate_local_descending_path(it.path, child(p, "path"), errs)
    if it.HasField("mode"):
        _validate_mode(it.mode, child(p, "mode"), errs)


def _validate_key_to_paths(items: Sequence[core.KeyToPath], path: str, errs: Errs) -> None:
    for i, it in enumerate(items):
        p = index(path, i)
        if not it.key:
            errs.required(child(p, "key"))
        _validate_volume_file(it, p, errs)


# What a downwardAPI volume may show (ValidateDownwardAPIVolumeFile): the pod's identity and metadata, which
# the kubelet can write before the containers start; status and spec fields are for env only.
_DOWNWARD_VOLUME_FIELDS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                           "metadata.uid")
_DOWNWARD_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['[^']+'\]")


def _validate_downward_items(items: Sequence[core.DownwardAPIVolumeFile], path: str, errs: Errs) -> None:
    for i, it in enumerate(items):
        p = index(path, i)
        _validate_volume_file(it, p, errs)
        if it.HasField("field_ref"):
            fp = it.field_ref.field_path
            if not fp:
                errs.required(child(p, "fieldRef", "fieldPath"))
            elif fp not in _DOWNWARD_VOLUME_FIELDS and not _DOWNWARD_SUBSCRIPT.fullmatch(fp):
                errs.not_supported(child(p, "fieldRef", "fieldPath"), fp, _DOWNWARD_VOLUME_FIELDS)
            if it.HasField("resource_field_ref"):
                errs.invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
        elif it.HasField("resource_field_ref"):
            if not it.resource_field_ref.container_name:
                errs.required(child(p, "resourceFieldRef", "containerName"))
            if not it.resource_field_ref.resource:
                errs.required(child(p, "resourceFieldRef", "resource"))
        else:
            errs.required(p, "one of fieldRef and resourceFieldRef is required")


_PROJECTIONS = (("secret", "secret"), ("downward_api", "downwardAPI"), ("config_map", "configMap"),
                ("service_account_token", "serviceAccountToken"), ("cluster_trust_bundle", "clusterTrustBundle"))


def _validate_projections(sources: Sequence[core.VolumeProjection], path: str, errs: Errs) -> None:
    for i, src in enumerate(sources):
        p = index(path, i)
        kinds = [name for field, name in _PROJECTIONS if src.HasField(field)]  # type: ignore[arg-type]
        if not kinds:
            errs.required(p, "must specify exactly 1 of: secret, downwardAPI, configMap, serviceAccountToken, "
                             "clusterTrustBundle")
        for extra in kinds[1:]:
            errs.forbidden(child(p, extra), "may not specify more than 1 volume type per source")
        if src.HasField("secret") or src.HasField("config_map"):
            ref, kind = (src.secret, "secret") if src.HasField("secret") else (src.config_map, "configMap")
            if not ref.name:
                errs.required(child(p, kind, "name"))
            _validate_key_to_paths(ref.items, child(p, kind, "items"), errs)
        if src.HasField("downward_api"):
            _validate_downward_items(src.downward_api.items, child(p, "downwardAPI", "items"), errs)


def _validate_volumes(volumes: Sequence[core.Volume], path: str, errs: Errs) -> set[str]:
    names: set[str] = set()
    for i, v in enumerate(volumes):
        p = index(path, i)
        name_path = child(p, "name")
        if not v.name:
            errs.required(name_path)
        else:
            errs.invalid_each(name_path, v.name, is_dns1123_label(v.name))
        if v.name in names:
            errs.duplicate(name_path, v.name)
        elif v.name:
            names.add(v.name)
        count = 0
        for field_name, json_name in _VOLUME_SOURCES:
            if v.HasField(field_name):  # type: ignore[arg-type]
                if count:
                    errs.forbidden(child(p, json_name), "may not specify more than 1 volume type")
                count += 1
        if count == 0:
            errs.required(p, "must specify a volume type")
        if v.HasField("host_path"):
            hp = v.host_path
            if not hp.path:
                errs.required(child(p, "hostPath", "path"))
            if hp.HasField("type") and hp.type not in _HOST_PATH_TYPES:
                errs.not_supported(child(p, "hostPath", "type"), hp.type, _HOST_PATH_TYPES)
        if v.HasField("empty_dir") and v.empty_dir.medium not in ("", "Memory", "HugePages"):
            errs.not_supported(child(p, "emptyDir", "medium"), v.empty_dir.medium, ("", "Memory", "HugePages"))
        if v.HasField("secret"):
            if not v.secret.secret_name:
                errs.required(child(p, "secret", "secretName"))
            if v.secret.HasField("default_mode"):
                _validate_mode(v.secret.default_mode, child(p, "secret", "defaultMode"), errs)
            _validate_key_to_paths(v.secret.items, child(p, "secret", "items"), errs)
        if v.HasField("config_map"):
            if not v.config_map.name:
                errs.required(child(p, "configMap", "name"))
            if v.config_map.HasField("default_mode"):
                _validate_mode(v.config_map.default_mode, child(p, "configMap", "defaultMode"), errs)
            _validate_key_to_paths(v.config_map.items, child(p, "configMap", "items"), errs)
        if v.HasField("downward_api"):
            if v.downward_api.HasField("default_mode"):
                _validate_mode(v.downward_api.default_mode, child(p, "downwardAPI", "defaultMode"), errs)
            _validate_downward_items(v.downward_api.items, child(p, "downwardAPI", "items"), errs)
        if v.HasField("projected"):
            if v.projected.HasField("default_mode"):
                _validate_mode(v.projected.default_mode, child(p, "projected", "defaultMode"), errs)
            _validate_projections(v.projected.sources, child(p, "projected", "sources"), errs)
    return names


def _validate_volume_mounts(mounts: Sequence[core.VolumeMount], volumes: set[str], path: str,
                            errs: Errs) -> None:
    seen: set[str] = set()
    for i, m in enumerate(mounts):
        p = index(path, i)
        if not m.name:
            errs.required(child(p, "name"))
        if m.name not in volumes:
            errs.not_found(child(p, "name"), m.name)
        if not m.mount_path:
            errs.required(child(p, "mountPath"))
        if m.mount_path in seen:
            errs.invalid(child(p, "mountPath"), m.mount_path, "must be unique")
        seen.add(m.mount_path)
        if m.sub_path:
            _validate_local_descending_path(m.sub_path, child(path, "subPath"), errs)
        if m.sub_path_expr and m.sub_path:
            errs.invalid(child(p, "subPathExpr"), m.sub_path_expr, "subPathExpr and subPath are mutually exclusive")
        if m.HasField("mount_propagation") and m.mount_propagation not in ("None", "HostToContainer",
                                                                             "Bidirectional"):
            errs.not_supported(child(p, "mountPropagation"), m.mount_propagation,
                               ("Bidirectional", "HostToContainer", "None"))


def _validate_container_ports(ports: Sequence[core.ContainerPort], path: str, errs: Errs,
                              host_network: bool) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = index(path, i)
        if port.name:
            msgs = is_valid_port_name(port.name)
            if msgs:
                errs.invalid_each(child(p, "name"), port.name, msgs)
            elif port.name in names:
                errs.duplicate(child(p, "name"), port.name)
            else:
                names.add(port.name)
        if port.container_port == 0:
            errs.required(child(p, "containerPort"))
        else:
            errs.invalid_each(child(p, "containerPort"), port.container_port,
                              is_valid_port_num(port.container_port))
        if port.host_port != 0:
            errs.invalid_each(child(p, "hostPort"), port.host_port, is_valid_port_num(port.host_port))
            if host_network and port.host_port != port.container_port:
                errs.invalid(child(p, "hostPort"), port.host_port,
                             "must match `containerPort` when `hostNetwork` is true")
        if not port.protocol:
            errs.required(child(p, "protocol"))
        elif port.protocol not in PORT_PROTOCOLS:
            errs.not_supported(child(p, "protocol"), port.protocol, PORT_PROTOCOLS)
        if port.host_ip:
            errs.invalid_each(child(p, "hostIP"), port.host_ip, is_valid_ip(port.host_ip))


def _validate_env(env: Sequence[core.EnvVar], path: str, errs: Errs) -> None:
    for i, ev in enumerate(env):
        p = index(path, i)
        if not ev.name:
            errs.required(child(p, "name"))
        errs.invalid_each(child(p, "name"), ev.name, is_relaxed_env_var_name(ev.name))
        if ev.HasField("value_from"):
            vp = child(p, "valueFrom")
            n = sum(ev.value_from.HasField(f) for f in ("field_ref", "resource_field_ref",  # type: ignore[arg-type]
                                                        "config_map_key_ref", "secret_key_ref", "file_key_ref"))
            if n == 0:
                errs.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                                     "or `secretKeyRef`")
            elif n > 1:
                errs.invalid(vp, "", "may not have more than one field specified at a time")
            if ev.value:
                errs.invalid(vp, "", "may not be specified when `value` is not empty")
            for ref_field, ref_json in (("config_map_key_ref", "configMapKeyRef"),
                                        ("secret_key_ref", "secretKeyRef")):
                if ev.value_from.HasField(ref_field):  # type: ignore[arg-type]
                    ref = getattr(ev.value_from, ref_field)
                    if not ref.name:
                        errs.required(child(vp, ref_json, "name"))
                    if ref.key:
                        errs.invalid_each(child(vp, ref_json, "key"), ref.key, is_config_map_key(ref.key))


def _validate_env_from(env_from: Sequence[core.EnvFromSource], path: str, errs: Errs) -> None:
    for i, ef in enumerate(env_from):
        p = index(path, i)
        n = ef.HasField("config_map_ref") + ef.HasField("secret_ref")
        if n == 0:
            errs.invalid(p, "", "must specify one of: `configMapRef` or `secretRef`")
        elif n > 1:
            errs.invalid(p, "", "may not have more than one field specified at a time")
        if ef.prefix:
            errs.invalid_each(child(p, "prefix"), ef.prefix, is_relaxed_env_var_name(ef.prefix))


def _overcommit_allowed(name: str) -> bool:
    native = "/" not in name or name.startswith("kubernetes.io/")
    return native and not name.startswith("hugepages-")


def _validate_resources(r: core.ResourceRequirements, path: str, errs: Errs) -> None:
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    for bag, bag_path in ((r.limits, lim_path), (r.requests, req_path)):
        for name in sorted(bag):
            p = key(bag_path, name)
            errs.invalid_each(p, name, is_qualified_name(name))
            if "/" not in name:
                if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
                    errs.invalid(p, name, "must be a standard resource for containers")
            elif not name.startswith("kubernetes.io/") and not name.startswith("requests."):
                pass  # an extended resource (example.com/gpu)
            text = bag[name].string
            try:
                amount = quantity.parse(text)
            except quantity.QuantityError as e:
                errs.invalid(p, text, str(e))
                continue
            if amount < 0:
                errs.invalid(p, text, "must be greater than or equal to 0")
            if not _overcommit_allowed(name) and not name.startswith("hugepages-") and amount % 1 != 0:
                errs.invalid(p, text, "must be an integer")
    for name in sorted(r.requests):
        req_text = r.requests[name].string
        if name in r.limits:
            lim_text = r.limits[name].string
            try:
                req, lim = quantity.parse(req_text), quantity.parse(lim_text)
            except quantity.QuantityError:
                continue
            if req != lim and not _overcommit_allowed(name):
                errs.invalid(req_path, req_text, f"must be equal to {name} limit of {lim_text}")
            elif req > lim:
                errs.invalid(req_path, req_text, f"must be less than or equal to {name} limit of {lim_text}")
        elif not _overcommit_allowed(name):
            errs.required(lim_path, "Limit must be set for non overcommitable resources")


def _validate_http_get(h: core.HTTPGetAction, path: str, errs: Errs) -> None:
    if not h.path:
        errs.required(child(path, "path"))
    validate_port_num_or_name(h.port, child(path, "port"), errs)
    if h.scheme not in ("HTTP", "HTTPS"):
        errs.not_supported(child(path, "scheme"), h.scheme, ("HTTP", "HTTPS"))
    for i, hdr in enumerate(h.http_headers):
        if not re.fullmatch(r"[-A-Za-z0-9!#$%&'*+.^_`|~]+", hdr.name):
            errs.invalid(child(index(child(path, "httpHeaders"), i), "name"), hdr.name,
                         "a valid HTTP header must consist of alphanumeric characters or '-' "
                         "(e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')")


def _validate_handler(h: core.Probe | core.LifecycleHandler, path: str, errs: Errs,
                      grace_period: int | None = None) -> None:
    kinds: list[tuple[str, str]] = [("exec", "exec"), ("http_get", "httpGet"), ("tcp_socket", "tcpSocket")]
    kinds.append(("grpc", "grpc") if isinstance(h, core.Probe) else ("sleep", "sleep"))
    n = 0
    for field_name, json_name in kinds:
        if not h.HasField(field_name):  # type: ignore[arg-type]
            continue
        p = child(path, json_name)
        if n:
            errs.forbidden(p, "may not specify more than 1 handler type")
            continue
        n += 1
        if field_name == "exec" and not h.exec.command:
            errs.required(child(p, "command"))
        elif field_name == "http_get":
            _validate_http_get(h.http_get, p, errs)
        elif field_name == "tcp_socket":
            validate_port_num_or_name(h.tcp_socket.port, child(p, "port"), errs)
        elif field_name == "grpc" and isinstance(h, core.Probe):
            errs.invalid_each(child(p, "port"), h.grpc.port, is_valid_port_num(h.grpc.port))
        elif field_name == "sleep" and isinstance(h, core.LifecycleHandler):
            secs = h.sleep.seconds
            if secs < 0 or (grace_period is not None and secs > grace_period):
                errs.invalid(p, secs, "must be non-negative and less than terminationGracePeriodSeconds "
                                      f"({grace_period if grace_period is not None else 30})")
    if n == 0:
        errs.required(path, "must specify a handler type")


def _validate_probe(probe: core.Probe, path: str, errs: Errs, kind: str) -> None:
    _validate_handler(probe, path, errs)
    for field_name, json_name in (("initial_delay_seconds", "initialDelaySeconds"),
                                  ("timeout_seconds", "timeoutSeconds"), ("period_seconds", "periodSeconds"),
                                  ("success_threshold", "successThreshold"),
                                  ("failure_threshold", "failureThreshold")):
        errs.nonnegative(child(path, json_name), getattr(probe, field_name))
    if probe.HasField("termination_grace_period_seconds"):
        if kind == "readiness":
            errs.invalid(child(path, "terminationGracePeriodSeconds"), probe.termination_grace_period_seconds,
                         "must not be set for readinessProbes")
        elif probe.termination_grace_period_seconds <= 0:
            errs.invalid(child(path, "terminationGracePeriodSeconds"), probe.termination_grace_period_seconds,
                         "must be greater than 0")
    if kind in ("liveness", "startup") and probe.success_threshold != 1:
        errs.invalid(child(path, "successThreshold"), probe.success_threshold, "must be 1")


_PROBES = (("liveness_probe", "livenessProbe", "liveness"), ("readiness_probe", "readinessProbe", "readiness"),
           ("startup_probe", "startupProbe", "startup"))


def _validate_container_common(c: core.Container | core.EphemeralContainer, volumes: set[str], path: str,
                               errs: Errs, host_network: bool) -> None:
    name_path = child(path, "name")
    if not c.name:
        errs.required(name_path)
    else:
        errs.invalid_each(name_path, c.name, is_dns1123_label(c.name))
    if not c.image:
        errs.required(child(path, "image"))
    elif c.image.strip() != c.image:
        errs.invalid(child(path, "image"), c.image, "must not have leading or trailing whitespace")
    policy = c.termination_message_policy
    if not policy:
        errs.required(child(path, "terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'")
    elif policy not in ("File", "FallbackToLogsOnError"):
        errs.not_supported(child(path, "terminationMessagePolicy"), policy, ("File", "FallbackToLogsOnError"))
    _validate_container_ports(c.ports, child(path, "ports"), errs, host_network)
    _validate_env(c.env, child(path, "env"), errs)
    _validate_env_from(c.env_from, child(path, "envFrom"), errs)
    _validate_volume_mounts(c.volume_mounts, volumes, child(path, "volumeMounts"), errs)
    if not c.image_pull_policy:
        errs.required(child(path, "imagePullPolicy"))
    elif c.image_pull_policy not in PULL_POLICIES:
        errs.not_supported(child(path, "imagePullPolicy"), c.image_pull_policy, PULL_POLICIES)
    _validate_resources(c.resources, child(path, "resources"), errs)


def _validate_lifecycle_and_probes(c: core.Container, path: str, errs: Errs, grace: int | None) -> None:
    if c.HasField("lifecycle"):
        for field_name, json_name in (("post_start", "postStart"), ("pre_stop", "preStop")):
            if c.lifecycle.HasField(field_name):  # type: ignore[arg-type]
                _validate_handler(getattr(c.lifecycle, field_name), child(path, "lifecycle", json_name), errs,
                                  grace)
    for field_name, json_name, kind in _PROBES:
        if c.HasField(field_name):  # type: ignore[arg-type]
            _validate_probe(getattr(c, field_name), child(path, json_name), errs, kind)


def _validate_containers(spec: core.PodSpec, volumes: set[str], path: str, errs: Errs) -> None:
    grace = spec.termination_grace_period_seconds if spec.HasField("termination_grace_period_seconds") else None
    cpath = child(path, "containers")
    if not spec.containers:
        errs.required(cpath)
    names: set[str] = set()
    for i, c in enumerate(spec.containers):
        p = index(cpath, i)
        _validate_container_common(c, volumes, p, errs, spec.host_network)
        if c.name in names:
            errs.duplicate(child(p, "name"), c.name)
        elif c.name:
            names.add(c.name)
        _validate_lifecycle_and_probes(c, p, errs, grace)
        if c.HasField("restart_policy"):
            errs.forbidden(child(p, "restartPolicy"), "may not be set for non-init containers")
    ipath = child(path, "initContainers")
    for i, c in enumerate(spec.init_containers):
        p = index(ipath, i)
        _validate_container_common(c, volumes, p, errs, spec.host_network)
        if c.name in names:
            errs.duplicate(child(p, "name"), c.name)
        elif c.name:
            names.add(c.name)
        if c.HasField("restart_policy") and c.restart_policy != "Always":
            errs.not_supported(child(p, "restartPolicy"), c.restart_policy, ("Always",))
        if c.HasField("restart_policy") and c.restart_policy == "Always":  # a sidecar: probes allowed
            _validate_lifecycle_and_probes(c, p, errs, grace)
            continue
        for field_name, json_name in (("lifecycle", "lifecycle"), *((f, j) for f, j, _ in _PROBES)):
            if c.HasField(field_name):  # type: ignore[arg-type]
                errs.forbidden(child(p, json_name), "may not be set for init containers without restartPolicy=Always")


def _validate_tolerations(tolerations: Sequence[core.Toleration], path: str, errs: Errs) -> None:
    for i, t in enumerate(tolerations):
        p = index(path, i)
        if t.key:
            errs.invalid_each(child(p, "key"), t.key, is_qualified_name(t.key))
        if not t.key and t.operator != "Exists":
            errs.invalid(child(p, "operator"), t.operator,
                         "operator must be Exists when `key` is empty, which means \"match all values and all keys\"")
        if t.HasField("toleration_seconds") and t.effect != "NoExecute":
            errs.invalid(child(p, "effect"), t.effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if t.operator in ("Equal", ""):
            msgs = is_label_value(t.value)
            if msgs:
                errs.invalid(child(p, "operator"), t.value, ";".join(msgs))
        elif t.operator == "Exists":
            if t.value:
                secs = str(t.toleration_seconds) if t.HasField("toleration_seconds") else "(*int64)(nil)"
                errs.invalid(child(p, "operator"), GoValue(
                    f"core.Toleration{{Key:{go_quote(t.key)}, Operator:{go_quote(t.operator)}, "
                    f"Value:{go_quote(t.value)}, Effect:{go_quote(t.effect)}, TolerationSeconds:{secs}}}"),
                    "value must be empty when `operator` is 'Exists'")
        else:
            errs.not_supported(child(p, "operator"), t.operator, ("Equal", "Exists"))
        if t.effect and t.effect not in TAINT_EFFECTS:
            errs.not_supported(child(p, "effect"), t.effect, TAINT_EFFECTS)


def _validate_node_selector_requirement(r: core.NodeSelectorRequirement, path: str, errs: Errs,
                                        field_selector: bool = False) -> None:
    if r.operator in ("In", "NotIn"):
        if not r.values:
            errs.required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
    elif r.operator in ("Exists", "DoesNotExist"):
        if r.values:
            errs.forbidden(child(path, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    elif r.operator in ("Gt", "Lt"):
        if len(r.values) != 1:
            errs.required(child(path, "values"), "must be specified single value when `operator` is 'Lt' or 'Gt'")
    else:
        errs.invalid(child(path, "operator"), r.operator, "not a valid selector operator")
    if not field_selector:
        errs.invalid_each(child(path, "key"), r.key, is_qualified_name(r.key))


def _validate_node_selector_term(term: core.NodeSelectorTerm, path: str, errs: Errs) -> None:
    for j, r in enumerate(term.match_expressions):
        _validate_node_selector_requirement(r, index(child(path, "matchExpressions"), j), errs)
    for j, r in enumerate(term.match_fields):
        p = index(child(path, "matchFields"), j)
        _validate_node_selector_requirement(r, p, errs, field_selector=True)
        if r.key != "metadata.name":
            errs.invalid(child(p, "key"), r.key, "not a valid field selector key")


def _validate_pod_affinity_terms(terms: Sequence[core.PodAffinityTerm], path: str, errs: Errs) -> None:
    for i, t in enumerate(terms):
        p = index(path, i)
        if not t.topology_key:
            errs.required(child(p, "topologyKey"), "can not be empty")
        else:
            errs.invalid_each(child(p, "topologyKey"), t.topology_key, is_qualified_name(t.topology_key))
        if t.HasField("label_selector"):
            validate_label_selector(t.label_selector, child(p, "labelSelector"), errs)
        if t.HasField("namespace_selector"):
            validate_label_selector(t.namespace_selector, child(p, "namespaceSelector"), errs)
        for j, ns in enumerate(t.namespaces):
            errs.invalid_each(index(child(p, "namespaces"), j), ns, is_dns1123_label(ns))


def _validate_weighted(terms: Sequence[core.WeightedPodAffinityTerm | core.PreferredSchedulingTerm],
                       path: str, errs: Errs) -> None:
    for i, t in enumerate(terms):
        if t.weight <= 0 or t.weight > 100:
            errs.invalid(child(index(path, i), "weight"), t.weight, "must be in the range 1-100")


def _validate_affinity(a: core.Affinity, path: str, errs: Errs) -> None:
    req_name, pref_name = "requiredDuringSchedulingIgnoredDuringExecution", \
        "preferredDuringSchedulingIgnoredDuringExecution"
    if a.HasField("node_affinity"):
        na, p = a.node_affinity, child(path, "nodeAffinity")
        if na.HasField("required_during_scheduling_ignored_during_execution"):
            rp = child(p, req_name)
            terms = na.required_during_scheduling_ignored_during_execution.node_selector_terms
            if not terms:
                errs.required(child(rp, "nodeSelectorTerms"), "must have at least one node selector term")
            for i, term in enumerate(terms):
                _validate_node_selector_term(term, index(child(rp, "nodeSelectorTerms"), i), errs)
        prefs = na.preferred_during_scheduling_ignored_during_execution
        _validate_weighted(prefs, child(p, pref_name), errs)
        for i, pref in enumerate(prefs):
            _validate_node_selector_term(pref.preference, child(index(child(p, pref_name), i), "preference"), errs)
    for field_name, json_name in (("pod_affinity", "podAffinity"), ("pod_anti_affinity", "podAntiAffinity")):
        if a.HasField(field_name):  # type: ignore[arg-type]
            pa, p = getattr(a, field_name), child(path, json_name)
            _validate_pod_affinity_terms(pa.required_during_scheduling_ignored_during_execution,
                                         child(p, req_name), errs)
            weighted = pa.preferred_during_scheduling_ignored_during_execution
            _validate_weighted(weighted, child(p, pref_name), errs)
            _validate_pod_affinity_terms([w.pod_affinity_term for w in weighted], child(p, pref_name), errs)


def _validate_topology_spread(cs: Sequence[core.TopologySpreadConstraint], path: str, errs: Errs) -> None:
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(cs):
        p = index(path, i)
        if c.max_skew <= 0:
            errs.invalid(child(p, "maxSkew"), c.max_skew, "must be greater than zero")
        if not c.topology_key:
            errs.required(child(p, "topologyKey"), "can not be empty")
        else:
            errs.invalid_each(child(p, "topologyKey"), c.topology_key, is_qualified_name(c.topology_key))
        if c.when_unsatisfiable not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.not_supported(child(p, "whenUnsatisfiable"), c.when_unsatisfiable,
                               ("DoNotSchedule", "ScheduleAnyway"))
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            errs.duplicate(child(p, "{topologyKey, whenUnsatisfiable}"),
                           f"{{{c.topology_key}, {c.when_unsatisfiable}}}")
        seen.add(pair)
        if c.HasField("label_selector"):
            validate_label_selector(c.label_selector, child(p, "labelSelector"), errs)


def validate_pod_spec(spec: core.PodSpec, path: str, errs: Errs, *, allow_ephemeral: bool = False) -> None:
    """ValidatePodSpec (pods and pod templates)."""
    volumes = _validate_volumes(spec.volumes, child(path, "volumes"), errs)
    _validate_containers(spec, volumes, path, errs)
    if spec.ephemeral_containers and not allow_ephemeral:
        errs.forbidden(child(path, "ephemeralContainers"), "cannot be set on create")
    if not spec.restart_policy:
        errs.required(child(path, "restartPolicy"))
    elif spec.restart_policy not in RESTART_POLICIES:
        errs.not_supported(child(path, "restartPolicy"), spec.restart_policy, RESTART_POLICIES)
    if not spec.dns_policy:
        errs.required(child(path, "dnsPolicy"))
    elif spec.dns_policy not in DNS_POLICIES:
        errs.not_supported(child(path, "dnsPolicy"), spec.dns_policy, DNS_POLICIES)
    elif spec.dns_policy == "None" and not spec.HasField("dns_config"):
        errs.required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None")
    if spec.HasField("dns_config"):
        for i, ns in enumerate(spec.dns_config.nameservers):
            errs.invalid_each(index(child(path, "dnsConfig", "nameservers"), i), ns, is_valid_ip(ns))
    validate_labels(spec.node_selector, child(path, "nodeSelector"), errs)
    for field_name, json_name, fn in (("service_account_name", "serviceAccountName", is_dns1123_subdomain),
                                      ("node_name", "nodeName", is_dns1123_subdomain),
                                      ("hostname", "hostname", is_dns1123_label),
                                      ("subdomain", "subdomain", is_dns1123_label),
                                      ("scheduler_name", "schedulerName", is_dns1123_subdomain),
                                      ("priority_class_name", "priorityClassName", is_dns1123_subdomain)):
        value = getattr(spec, field_name)
        if value:
            errs.invalid_each(child(path, json_name), value, fn(value))
    if spec.HasField("active_deadline_seconds") and not 1 <= spec.active_deadline_seconds <= MAX_INT32:
        errs.invalid(child(path, "activeDeadlineSeconds"), spec.active_deadline_seconds,
                     f"must be between 1 and {MAX_INT32}, inclusive")
    if spec.HasField("affinity"):
        _validate_affinity(spec.affinity, child(path, "affinity"), errs)
    _validate_tolerations(spec.tolerations, child(path, "tolerations"), errs)
    _validate_topology_spread(spec.topology_spread_constraints, child(path, "topologySpreadConstraints"), errs)
    for i, ha in enumerate(spec.host_aliases):
        errs.invalid_each(child(index(child(path, "hostAliases"), i), "ip"), ha.ip, is_valid_ip(ha.ip))
    if spec.HasField("preemption_policy") and spec.preemption_policy not in ("PreemptLowerPriority", "Never"):
        errs.not_supported(child(path, "preemptionPolicy"), spec.preemption_policy, ("Never", "PreemptLowerPriority"))


def validate_pod_template(t: core.PodTemplateSpec, path: str, errs: Errs) -> None:
    """ValidatePodTemplateSpec: template labels/annotations and the pod spec."""
    validate_labels(t.metadata.labels, child(path, "metadata", "labels"), errs)
    validate_annotations(t.metadata.annotations, child(path, "metadata", "annotations"), errs)
    validate_pod_spec(t.spec, child(path, "spec"), errs)


# ======================================================================================================
# Pods
# ======================================================================================================

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, "
    "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), "
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_STATUSES = ("True", "False", "Unknown")


def _validate_pod(pod: core.Pod, errs: Errs) -> None:
    validate_pod_spec(pod.spec, "spec", errs)


def _validate_only_added_tolerations(new: Sequence[core.Toleration], old: Sequence[core.Toleration],
                                     path: str, errs: Errs) -> None:
    for o in old:
        found = False
        for n in new:
            clone = core.Toleration()
            clone.CopyFrom(o)
            # tolerationSeconds may change (the node lifecycle controller's evictions rely on it)
            if n.HasField("toleration_seconds"):
                clone.toleration_seconds = n.toleration_seconds
            else:
                clone.ClearField("toleration_seconds")
            if clone == n:
                found = True
                break
        if not found:
            errs.forbidden(path, "existing toleration can not be modified except its tolerationSeconds")
            return


def _validate_pod_update(new: core.Pod, old: core.Pod, errs: Errs) -> None:
    ns, os_ = new.spec, old.spec
    if len(ns.containers) != len(os_.containers):
        errs.forbidden("spec.containers", "pod updates may not add or remove containers")
        return
    if len(ns.init_containers) != len(os_.init_containers):
        errs.forbidden("spec.initContainers", "pod updates may not add or remove containers")
        return
    if ns.HasField("active_deadline_seconds"):
        v = ns.active_deadline_seconds
        if v < 0 or v > MAX_INT32:
            errs.invalid("spec.activeDeadlineSeconds", v, f"must be between 0 and {MAX_INT32}, inclusive")
            return
        if os_.HasField("active_deadline_seconds") and os_.active_deadline_seconds < v:
            errs.invalid("spec.activeDeadlineSeconds", v, "must be less than or equal to previous value")
            return
    elif os_.HasField("active_deadline_seconds"):
        errs.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value")
    # Copy what may change from the new spec onto the old; anything else that differs is forbidden.
    munged = core.PodSpec()
    munged.CopyFrom(ns)
    for i, c in enumerate(munged.containers):
        c.image = os_.containers[i].image
    for i, c in enumerate(munged.init_containers):
        c.image = os_.init_containers[i].image
    if os_.HasField("active_deadline_seconds"):
        munged.active_deadline_seconds = os_.active_deadline_seconds
    else:
        munged.ClearField("active_deadline_seconds")
    _validate_only_added_tolerations(ns.tolerations, os_.tolerations, "spec.tolerations", errs)
    del munged.tolerations[:]
    munged.tolerations.extend(os_.tolerations)
    if (os_.HasField("termination_grace_period_seconds") and os_.termination_grace_period_seconds < 0
            and ns.termination_grace_period_seconds == 1):
        munged.termination_grace_period_seconds = os_.termination_grace_period_seconds
    if munged != os_:
        errs.forbidden("spec", POD_UPDATE_FORBIDDEN)


def _validate_conditions(conditions: Iterable[Any], path: str, errs: Errs) -> None:
    for i, c in enumerate(conditions):
        if c.status not in CONDITION_STATUSES:
            errs.not_supported(child(index(path, i), "status"), c.status, CONDITION_STATUSES)


def _validate_pod_status(new: core.Pod, old: core.Pod, errs: Errs) -> None:
    st = new.status
    if st.phase and st.phase not in POD_PHASES:
        errs.not_supported("status.phase", st.phase, POD_PHASES)
    _validate_conditions(st.conditions, "status.conditions", errs)
    if st.nominated_node_name:
        errs.invalid_each("status.nominatedNodeName", st.nominated_node_name,
                          is_dns1123_subdomain(st.nominated_node_name))
    if st.pod_ip:
        errs.invalid_each("status.podIP", st.pod_ip, is_valid_ip(st.pod_ip))
    for i, ip in enumerate(st.pod_ips):
        errs.invalid_each(child(index("status.podIPs", i), "ip"), ip.ip, is_valid_ip(ip.ip))
    if st.host_ip:
        errs.invalid_each("status.hostIP", st.host_ip, is_valid_ip(st.host_ip))
    if st.qos_class and st.qos_class not in ("Guaranteed", "Burstable", "BestEffort"):
        errs.not_supported("status.qosClass", st.qos_class, ("BestEffort", "Burstable", "Guaranteed"))
    # The scheduler binds through pods/binding; the status subresource may not move a pod.
    if new.spec.node_name != old.spec.node_name and old.spec.node_name:
        errs.forbidden("spec.nodeName", "pod updates may not change nodeName")


def _validate_binding(b: core.Binding, errs: Errs) -> None:
    if b.target.kind and b.target.kind != "Node":
        errs.not_supported("target.kind", b.target.kind, ("Node", "<empty>"))
    if not b.target.name:
        errs.required("target.name")
    else:
        errs.invalid_each("target.name", b.target.name, is_dns1123_subdomain(b.target.name))


# ======================================================================================================
# Services, Endpoints
# ======================================================================================================

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400


def _go_service_port(protocol: str, port: int) -> GoValue:
    return GoValue(f"core.ServicePort{{Name:\"\", Protocol:{go_quote(protocol)}, AppProtocol:(*string)(nil), "
                   f"Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}")


def _validate_service(svc: core.Service, errs: Errs) -> None:
    spec, sp = svc.spec, "spec"
    headless = spec.cluster_ip == "None"
    if not spec.ports and not headless and spec.type != "ExternalName":
        errs.required("spec.ports")
    if not spec.type:
        errs.required("spec.type")
    elif spec.type not in SERVICE_TYPES:
        errs.not_supported("spec.type", spec.type, SERVICE_TYPES)
    if spec.type == "ExternalName":
        if spec.cluster_ips:
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        cname = spec.external_name.removesuffix(".")
        if cname:
            errs.invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname))
        else:
            errs.required("spec.externalName")
    # Ports
    names: set[str] = set()
    require_name = len(spec.ports) > 1
    for i, port in enumerate(spec.ports):
        p = index("spec.ports", i)
        if require_name and not port.name:
            errs.required(child(p, "name"))
        elif port.name:
            errs.invalid_each(child(p, "name"), port.name, is_dns1123_label(port.name))
            if port.name in names:
                errs.duplicate(child(p, "name"), port.name)
            names.add(port.name)
        errs.invalid_each(child(p, "port"), port.port, is_valid_port_num(port.port))
        if not port.protocol:
            errs.required(child(p, "protocol"))
        elif port.protocol not in PORT_PROTOCOLS:
            errs.not_supported(child(p, "protocol"), port.protocol, PORT_PROTOCOLS)
        validate_port_num_or_name(port.target_port, child(p, "targetPort"), errs)
        if port.node_port:
            errs.invalid_each(child(p, "nodePort"), port.node_port, is_valid_port_num(port.node_port))
    # Session affinity
    if not spec.session_affinity:
        errs.required("spec.sessionAffinity")
    elif spec.session_affinity not in SESSION_AFFINITIES:
        errs.not_supported("spec.sessionAffinity", spec.session_affinity, SESSION_AFFINITIES)
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config.client_ip
        tp = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if not cfg.HasField("timeout_seconds"):
            errs.required(tp)
        elif not 0 < cfg.timeout_seconds <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            errs.invalid(tp, cfg.timeout_seconds,
                         f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}")
    elif spec.HasField("session_affinity_config"):
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
    # Cluster IPs
    if spec.type != "ExternalName":
        ips = list(spec.cluster_ips)
        if ips and spec.cluster_ip != ips[0]:
            errs.invalid("spec.clusterIPs", go_strings(ips), "first value must match `clusterIP`")
        if not ips and spec.cluster_ip:
            ips = [spec.cluster_ip]
        for i, ip in enumerate(ips):
            if i == 0 and ip == "None":
                if len(ips) > 1:
                    errs.invalid("spec.clusterIPs", go_strings(ips), "'None' must be the first and only value")
                continue
            errs.invalid_each(index("spec.clusterIPs", i), ip, is_valid_ip(ip))
    if spec.type == "ClusterIP":
        for i, port in enumerate(spec.ports):
            if port.node_port:
                errs.forbidden(child(index("spec.ports", i), "nodePort"), "may not be used when `type` is 'ClusterIP'")
    if spec.type in ("NodePort", "LoadBalancer") and headless:
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {spec.type} services")
    seen_ports: set[tuple[str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(spec.ports):
        k = (port.protocol, port.port)
        if k in seen_ports:
            errs.duplicate(index("spec.ports", i), _go_service_port(port.protocol, port.port))
        seen_ports.add(k)
        if port.node_port:
            nk = (port.protocol, port.node_port)
            if nk in seen_node_ports:
                errs.duplicate(child(index("spec.ports", i), "nodePort"), port.node_port)
            seen_node_ports.add(nk)
    for i, ip in enumerate(spec.external_ips):
        errs.invalid_each(index("spec.externalIPs", i), ip, is_valid_ip(ip))
    validate_labels(spec.selector, "spec.selector", errs)
    # Traffic policies
    externally = spec.type in ("NodePort", "LoadBalancer") or (spec.type == "ClusterIP" and len(spec.external_ips) > 0)
    etp = spec.external_traffic_policy
    if not externally:
        if etp:
            errs.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
    elif not etp:
        errs.required("spec.externalTrafficPolicy")
    elif etp not in ("Cluster", "Local"):
        errs.not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local"))
    if not spec.HasField("internal_traffic_policy"):
        if spec.type in ("ClusterIP", "NodePort", "LoadBalancer"):
            errs.required("spec.internalTrafficPolicy")
    elif spec.internal_traffic_policy not in ("Cluster", "Local"):
        errs.not_supported("spec.internalTrafficPolicy", spec.internal_traffic_policy, ("Cluster", "Local"))
    for i, fam in enumerate(spec.ip_families):
        if fam not in ("IPv4", "IPv6"):
            errs.not_supported(index("spec.ipFamilies", i), fam, ("IPv4", "IPv6"))
    if spec.HasField("ip_family_policy") and spec.ip_family_policy not in (
            "SingleStack", "PreferDualStack", "RequireDualStack"):
        errs.not_supported("spec.ipFamilyPolicy", spec.ip_family_policy,
                           ("PreferDualStack", "RequireDualStack", "SingleStack"))
    del sp


def _validate_service_update(new: core.Service, old: core.Service, errs: Errs) -> None:
    # clusterIP is immutable once allocated, unless the service moves to or from ExternalName.
    if new.spec.type != "ExternalName" and old.spec.type != "ExternalName" and old.spec.cluster_ip:
        errs.immutable("spec.clusterIP", new.spec.cluster_ip, old.spec.cluster_ip)


def _validate_service_status(new: core.Service, old: core.Service, errs: Errs) -> None:
    for i, ing in enumerate(new.status.load_balancer.ingress):
        if ing.ip:
            errs.invalid_each(child(index("status.loadBalancer.ingress", i), "ip"), ing.ip, is_valid_ip(ing.ip))
    _validate_conditions(new.status.conditions, "status.conditions", errs)


def _validate_endpoint_address(a: core.EndpointAddress, path: str, errs: Errs) -> None:
    msgs = is_valid_ip(a.ip)
    errs.invalid_each(child(path, "ip"), a.ip, msgs)
    if not msgs:
        ip = ipaddress.ip_address(a.ip)
        if ip.is_unspecified:
            errs.invalid(child(path, "ip"), a.ip, f"may not be unspecified ({a.ip})")
        elif ip.is_loopback:
            errs.invalid(child(path, "ip"), a.ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
        elif ip.is_link_local:
            errs.invalid(child(path, "ip"), a.ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if a.hostname:
        errs.invalid_each(child(path, "hostname"), a.hostname, is_dns1123_label(a.hostname))
    if a.HasField("node_name") and a.node_name:
        errs.invalid_each(child(path, "nodeName"), a.node_name, is_dns1123_subdomain(a.node_name))


def _validate_endpoints(ep: core.Endpoints, errs: Errs) -> None:
    for i, ss in enumerate(ep.subsets):
        p = index("subsets", i)
        if not ss.addresses and not ss.not_ready_addresses:
            errs.required(p, "must specify `addresses` or `notReadyAddresses`")
        for j, a in enumerate(ss.addresses):
            _validate_endpoint_address(a, index(child(p, "addresses"), j), errs)
        for j, a in enumerate(ss.not_ready_addresses):
            _validate_endpoint_address(a, index(child(p, "notReadyAddresses"), j), errs)
        names: set[str] = set()
        for j, port in enumerate(ss.ports):
            pp = index(child(p, "ports"), j)
            if len(ss.ports) > 1 and not port.name:
                errs.required(child(pp, "name"))
            elif port.name:
                errs.invalid_each(child(pp, "name"), port.name, is_dns1123_label(port.name))
                if port.name in names:
                    errs.duplicate(child(pp, "name"), port.name)
                names.add(port.name)
            errs.invalid_each(child(pp, "port"), port.port, is_valid_port_num(port.port))
            if not port.protocol:
                errs.required(child(pp, "protocol"))
            elif port.protocol not in PORT_PROTOCOLS:
                errs.not_supported(child(pp, "protocol"), port.protocol, PORT_PROTOCOLS)


# ======================================================================================================
# Workloads
# ======================================================================================================

def _go_int_or_string(v: meta.IntOrString) -> GoValue:
    return GoValue(f"intstr.IntOrString{{Type:{v.type}, IntVal:{v.int_val}, StrVal:{go_quote(v.str_val)}}}")


def _validate_positive_int_or_percent(v: meta.IntOrString, path: str, errs: Errs) -> None:
    if v.type == 1:
        errs.invalid_each(path, _go_int_or_string(v), is_valid_percent(v.str_val))
    else:
        errs.nonnegative(path, v.int_val)


def _int_or_percent_value(v: meta.IntOrString) -> int:
    if v.type == 1:
        try:
            return int(v.str_val.removesuffix("%"))
        except ValueError:
            return -1
    return v.int_val


def _validate_selector_and_template(selector: meta.LabelSelector | None, has_template: bool,
                                    template: core.PodTemplateSpec, path: str, kind: str, errs: Errs) -> None:
    """ValidatePodTemplateSpecForReplicaSet and friends: selector vs labels, restartPolicy Always."""
    tp = child(path, "template")
    if not has_template:
        errs.required(tp)
        return
    if selector is not None and (selector.match_labels or selector.match_expressions) \
            and not selector_matches(selector, template.metadata.labels):
        errs.invalid(child(tp, "metadata", "labels"), go_map(template.metadata.labels),
                     "`selector` does not match template `labels`")
    validate_pod_template(template, tp, errs)
    if template.spec.restart_policy != "Always":
        errs.not_supported(child(tp, "spec", "restartPolicy"), template.spec.restart_policy, ("Always",))
    if template.spec.HasField("active_deadline_seconds"):
        if kind == "ReplicationController":
            errs.forbidden(child(tp, "spec", "activeDeadlineSeconds"),
                           "activeDeadlineSeconds in ReplicationController is not Supported")
        else:
            errs.invalid(child(tp, "spec", "activeDeadlineSeconds"), template.spec.active_deadline_seconds,
                         "activeDeadlineSeconds in ReplicaSet is not Supported")


def _validate_apps_selector(spec: apps.DeploymentSpec | apps.ReplicaSetSpec, errs: Errs) -> None:
    if not spec.HasField("selector"):
        errs.required("spec.selector")
        return
    validate_label_selector(spec.selector, "spec.selector", errs)
    if not spec.selector.match_labels and not spec.selector.match_expressions:
        errs.invalid("spec.selector", go_label_selector(spec.selector), "empty selector is invalid for deployment")


def _validate_deployment(d: apps.Deployment, errs: Errs) -> None:
    spec = d.spec
    errs.nonnegative("spec.replicas", spec.replicas)
    _validate_apps_selector(spec, errs)
    _validate_selector_and_template(spec.selector if spec.HasField("selector") else None, spec.HasField("template"),
                                    spec.template, "spec", "Deployment", errs)
    st, p = spec.strategy, "spec.strategy"
    if st.type == "Recreate":
        if st.HasField("rolling_update"):
            errs.forbidden(child(p, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")
    elif st.type == "RollingUpdate":
        if not st.HasField("rolling_update"):
            errs.required(child(p, "rollingUpdate"), "this should be defaulted and never be nil")
        else:
            ru, rp = st.rolling_update, child(p, "rollingUpdate")
            _validate_positive_int_or_percent(ru.max_unavailable, child(rp, "maxUnavailable"), errs)
            _validate_positive_int_or_percent(ru.max_surge, child(rp, "maxSurge"), errs)
            if _int_or_percent_value(ru.max_unavailable) == 0 and _int_or_percent_value(ru.max_surge) == 0:
                errs.invalid(child(rp, "maxUnavailable"), _go_int_or_string(ru.max_unavailable),
                             "may not be 0 when `maxSurge` is 0")
            if ru.max_unavailable.type == 1 and _int_or_percent_value(ru.max_unavailable) > 100:
                errs.invalid(child(rp, "maxUnavailable"), _go_int_or_string(ru.max_unavailable),
                             "must not be greater than 100%")
    else:
        ru_text = "(*apps.RollingUpdateDeployment)(nil)" if not st.HasField("rolling_update") \
            else "&apps.RollingUpdateDeployment{...}"
        errs.not_supported(p, GoValue(f"apps.DeploymentStrategy{{Type:{go_quote(st.type)}, RollingUpdate:{ru_text}}}"),
                           ("Recreate", "RollingUpdate"))
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    if spec.HasField("revision_history_limit"):
        errs.nonnegative("spec.revisionHistoryLimit", spec.revision_history_limit)
    if spec.HasField("progress_deadline_seconds"):
        errs.nonnegative("spec.progressDeadlineSeconds", spec.progress_deadline_seconds)
        if spec.progress_deadline_seconds <= spec.min_ready_seconds:
            errs.invalid("spec.progressDeadlineSeconds", spec.progress_deadline_seconds,
                         "must be greater than minReadySeconds")


def _validate_replica_set(rs: apps.ReplicaSet, errs: Errs) -> None:
    spec = rs.spec
    errs.nonnegative("spec.replicas", spec.replicas)
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    _validate_apps_selector(spec, errs)
    _validate_selector_and_template(spec.selector if spec.HasField("selector") else None, spec.HasField("template"),
                                    spec.template, "spec", "ReplicaSet", errs)


def _validate_selector_update(new: apps.Deployment | apps.ReplicaSet, old: apps.Deployment | apps.ReplicaSet,
                              errs: Errs) -> None:
    if new.spec.selector != old.spec.selector:
        errs.invalid("spec.selector", go_label_selector(new.spec.selector), "field is immutable")


def _validate_replication_controller(rc: core.ReplicationController, errs: Errs) -> None:
    spec = rc.spec
    errs.nonnegative("spec.minReadySeconds", spec.min_ready_seconds)
    if not spec.selector:
        errs.required("spec.selector")
    errs.nonnegative("spec.replicas", spec.replicas)
    validate_labels(spec.selector, "spec.selector", errs)
    sel = meta.LabelSelector(match_labels=dict(spec.selector))
    _validate_selector_and_template(sel, spec.HasField("template"), spec.template, "spec",
                                    "ReplicationController", errs)


def _validate_replica_counts(st: Any, errs: Errs) -> None:
    """Workload status: counts non-negative and consistent (ValidateReplicaSetStatus and friends)."""
    for field_name, json_name in (("replicas", "replicas"), ("fully_labeled_replicas", "fullyLabeledReplicas"),
                                  ("updated_replicas", "updatedReplicas"), ("ready_replicas", "readyReplicas"),
                                  ("available_replicas", "availableReplicas"),
                                  ("unavailable_replicas", "unavailableReplicas"),
                                  ("observed_generation", "observedGeneration")):
        if field_name in st.DESCRIPTOR.fields_by_name:
            errs.nonnegative(child("status", json_name), getattr(st, field_name))
    if "fully_labeled_replicas" in st.DESCRIPTOR.fields_by_name and st.fully_labeled_replicas > st.replicas:
        errs.invalid("status.fullyLabeledReplicas", st.fully_labeled_replicas,
                     "cannot be greater than status.replicas")
    if st.ready_replicas > st.replicas:
        errs.invalid("status.readyReplicas", st.ready_replicas, "cannot be greater than status.replicas")
    if st.available_replicas > st.replicas:
        errs.invalid("status.availableReplicas", st.available_replicas, "cannot be greater than status.replicas")
    if st.available_replicas > st.ready_replicas:
        errs.invalid("status.availableReplicas", st.available_replicas,
                     "cannot be greater than readyReplicas")
    _validate_conditions(st.conditions, "status.conditions", errs)


# ======================================================================================================
# Namespace, Node, config, events, leases
# ======================================================================================================

def _validate_namespace(ns: core.Namespace, errs: Errs) -> None:
    _validate_finalizers(ns.spec.finalizers, "spec.finalizers", errs)


def _validate_namespace_status(new: core.Namespace, old: core.Namespace, errs: Errs) -> None:
    if new.status.phase and new.status.phase not in ("Active", "Terminating"):
        errs.not_supported("status.phase", new.status.phase, ("Active", "Terminating"))
    _validate_conditions(new.status.conditions, "status.conditions", errs)


def _validate_taints(taints: Sequence[core.Taint], path: str, errs: Errs) -> None:
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints):
        p = index(path, i)
        errs.invalid_each(child(p, "key"), t.key, is_qualified_name(t.key))
        errs.invalid_each(child(p, "value"), t.value, is_label_value(t.value))
        if not t.effect:
            errs.required(child(p, "effect"))
        elif t.effect not in TAINT_EFFECTS:
            errs.not_supported(child(p, "effect"), t.effect, TAINT_EFFECTS)
        if (t.key, t.effect) in seen:
            errs.invalid(p, GoValue(f"core.Taint{{Key:{go_quote(t.key)}, Value:{go_quote(t.value)}, "
                                    f"Effect:{go_quote(t.effect)}, TimeAdded:<nil>}}"),
                         "taints must be unique by key and effect pair")
        seen.add((t.key, t.effect))


def _validate_node(n: core.Node, errs: Errs) -> None:
    spec = n.spec
    if spec.pod_cidrs:
        for i, c in enumerate(spec.pod_cidrs):
            errs.invalid_each(index("spec.podCIDRs", i), c, is_valid_cidr(c))
        families = [ipaddress.ip_network(c, strict=False).version for c in spec.pod_cidrs if not is_valid_cidr(c)]
        if len(spec.pod_cidrs) > 2 or len(set(families)) != len(families):
            errs.invalid("spec.podCIDRs", go_strings(spec.pod_cidrs),
                         "may specify no more than one CIDR for each IP family")
    elif spec.pod_cidr:
        errs.invalid_each("spec.podCIDR", spec.pod_cidr, is_valid_cidr(spec.pod_cidr))
    _validate_taints(spec.taints, "spec.taints", errs)


def _validate_node_update(new: core.Node, old: core.Node, errs: Errs) -> None:
    if old.spec.pod_cidrs and list(new.spec.pod_cidrs) != list(old.spec.pod_cidrs):
        errs.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
    if old.spec.provider_id and new.spec.provider_id != old.spec.provider_id:
        errs.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')


def _validate_node_status(new: core.Node, old: core.Node, errs: Errs) -> None:
    _validate_conditions(new.status.conditions, "status.conditions", errs)
    for bag, name in ((new.status.capacity, "capacity"), (new.status.allocatable, "allocatable")):
        for k in sorted(bag):
            if not quantity.is_valid(bag[k].string) or quantity.parse(bag[k].string) < 0:
                errs.invalid(key(child("status", name), k), bag[k].string, "must be greater than or equal to 0")


def _validate_config_map(cm: core.ConfigMap, errs: Errs) -> None:
    total = 0
    for k in sorted(cm.data):
        errs.invalid_each(key("data", k), k, is_config_map_key(k))
        if k in cm.binary_data:
            errs.invalid(key("data", k), k, "duplicate of key present in binaryData")
        total += len(cm.data[k].encode())
    for k in sorted(cm.binary_data):
        errs.invalid_each(key("binaryData", k), k, is_config_map_key(k))
        total += len(cm.binary_data[k])
    if total > MAX_SECRET_SIZE:
        errs.too_long("", MAX_SECRET_SIZE)


def _validate_immutable_data(new: core.ConfigMap | core.Secret, old: core.ConfigMap | core.Secret,
                             errs: Errs) -> None:
    if old.HasField("immutable") and old.immutable:
        if not new.immutable:
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        if dict(new.data) != dict(old.data):
            errs.forbidden("data", "field is immutable when `immutable` is set")
        if isinstance(new, core.ConfigMap) and isinstance(old, core.ConfigMap) \
                and dict(new.binary_data) != dict(old.binary_data):
            errs.forbidden("binaryData", "field is immutable when `immutable` is set")


def _validate_secret(s: core.Secret, errs: Errs) -> None:
    total = 0
    for k in sorted(s.data):
        errs.invalid_each(key("data", k), k, is_config_map_key(k))
        total += len(s.data[k])
    if total > MAX_SECRET_SIZE:
        errs.too_long("data", MAX_SECRET_SIZE)
    if s.type == "kubernetes.io/service-account-token":
        if not s.metadata.annotations.get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif s.type == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in s.data:
            errs.required("data[.dockerconfigjson]")
        else:
            try:
                if not isinstance(json.loads(s.data[".dockerconfigjson"]), dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
            except ValueError as e:
                errs.invalid("data[.dockerconfigjson]", "<secret contents redacted>", str(e))
    elif s.type == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in s.data:
                errs.required(key("data", k))
    elif s.type == "kubernetes.io/basic-auth":
        if "username" not in s.data and "password" not in s.data:
            errs.required("data[username]", "either username or password is required to use basic authentication")
    elif s.type == "kubernetes.io/ssh-auth" and "ssh-privatekey" not in s.data:
        errs.required("data[ssh-privatekey]")


def _validate_secret_update(new: core.Secret, old: core.Secret, errs: Errs) -> None:
    errs.immutable("type", new.type, old.type)
    _validate_immutable_data(new, old, errs)


def _validate_event(ev: core.Event, errs: Errs) -> None:
    ns, involved_ns = ev.metadata.namespace, ev.involved_object.namespace
    if not ev.HasField("event_time"):
        if (not involved_ns and ns not in ("", "default")) or (involved_ns and ns != involved_ns):
            errs.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            errs.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
        if not ev.reporting_component:
            errs.required("reportingComponent")
        else:
            errs.invalid_each("reportingComponent", ev.reporting_component,
                              is_qualified_name(ev.reporting_component))
        if not ev.reporting_instance:
            errs.required("reportingInstance")
        elif len(ev.reporting_instance) > 128:
            errs.invalid("reportingInstance", "", "can have at most 128 characters")
        if not ev.action:
            errs.required("action")
        if ev.type not in ("Normal", "Warning"):
            errs.not_supported("type", ev.type, ("Normal", "Warning"))
    if ev.count < 0:
        errs.invalid("count", ev.count, "must be greater than or equal to 0")


def _validate_lease(lease: coordination.Lease, errs: Errs) -> None:
    spec = lease.spec
    if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds <= 0:
        errs.invalid("spec.leaseDurationSeconds", spec.lease_duration_seconds, "must be greater than 0")
    if spec.HasField("lease_transitions") and spec.lease_transitions < 0:
        errs.invalid("spec.leaseTransitions", spec.lease_transitions, "must be greater than or equal to 0")
    if spec.HasField("preferred_holder") and spec.preferred_holder and not spec.HasField("strategy"):
        errs.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")


def _validate_service_account(sa: core.ServiceAccount, errs: Errs) -> None:
    for i, s in enumerate(sa.secrets):
        if s.name:
            errs.invalid_each(child(index("secrets", i), "name"), s.name, is_dns1123_subdomain(s.name))


# ======================================================================================================
# Generic: fields marked [(pybernetes.api.meta.v1.required) = true]
# ======================================================================================================

_REQUIRED: Any = options_pb2.required
_SPECIAL = frozenset({meta.Time.DESCRIPTOR.full_name, meta.Quantity.DESCRIPTOR.full_name,
                      meta.IntOrString.DESCRIPTOR.full_name, meta.RawExtension.DESCRIPTOR.full_name})


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_MESSAGE and bool(_msg_type(fd).GetOptions().map_entry)


def _msg_type(fd: FieldDescriptor) -> Descriptor:
    t = fd.message_type
    assert t is not None
    return t


def _target(fd: FieldDescriptor) -> Descriptor | None:
    """The message a message field (or a map field's values) holds, None for scalar map values."""
    return _msg_type(fd).fields_by_name["value"].message_type if _is_map(fd) else _msg_type(fd)


@cache
def _plan(desc: Descriptor) -> tuple[tuple[FieldDescriptor, bool, Descriptor | None], ...]:
    """(field, required?, message type worth descending into) for fields that matter to the walk."""
    out = []
    for fd in desc.fields:
        required = bool(fd.GetOptions().Extensions[_REQUIRED])
        sub: Descriptor | None = None
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            target = _target(fd)
            if target is not None and target.full_name not in _SPECIAL and _has_required(target):
                sub = target
        if required or sub is not None:
            out.append((fd, required, sub))
    return tuple(out)


@cache
def _has_required(desc: Descriptor, _depth: int = 0) -> bool:
    if _depth > 20:  # recursive message types: assume yes, the walk only follows what is set
        return True
    for fd in desc.fields:
        if fd.GetOptions().Extensions[_REQUIRED]:
            return True
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            t = _target(fd)
            if t is not None and t.full_name not in _SPECIAL and t is not desc and _has_required(t, _depth + 1):
                return True
    return False


def _is_set(msg: Message, fd: FieldDescriptor) -> bool:
    if fd.is_repeated:  # lists and maps: non-empty
        return len(getattr(msg, fd.name)) > 0
    if fd.type == FieldDescriptor.TYPE_MESSAGE or fd.has_presence:
        return msg.HasField(fd.name)
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return True  # false is a value, not an absence
    return bool(getattr(msg, fd.name))


def walk_required(msg: Message, path: str, errs: Errs, skip: frozenset[str] = frozenset()) -> None:
    for fd, required, sub in _plan(msg.DESCRIPTOR):
        if fd.json_name in skip:
            continue
        p = child(path, fd.json_name)
        if required and not _is_set(msg, fd):
            errs.required(p)
        if sub is None:
            continue
        value = getattr(msg, fd.name)
        if _is_map(fd):
            for k in sorted(value):
                walk_required(value[k], key(p, k), errs)
        elif fd.is_repeated:
            for i, item in enumerate(value):
                walk_required(item, index(p, i), errs)
        elif msg.HasField(fd.name):
            walk_required(value, p, errs)


# ======================================================================================================
# Dispatch
# ======================================================================================================

Check = Callable[[Any, Errs], None]
UpdateCheck = Callable[[Any, Any, Errs], None]

_CREATE: dict[type[Message], Check] = {
    core.Pod: _validate_pod,
    core.Binding: _validate_binding,
    core.Service: _validate_service,
    core.Endpoints: _validate_endpoints,
    core.ReplicationController: _validate_replication_controller,
    core.Namespace: _validate_namespace,
    core.Node: _validate_node,
    core.ConfigMap: _validate_config_map,
    core.Secret: _validate_secret,
    core.Event: _validate_event,
    core.ServiceAccount: _validate_service_account,
    apps.Deployment: _validate_deployment,
    apps.ReplicaSet: _validate_replica_set,
    coordination.Lease: _validate_lease,
}

_UPDATE: dict[type[Message], UpdateCheck] = {
    core.Pod: _validate_pod_update,
    core.Service: _validate_service_update,
    core.Node: _validate_node_update,
    core.ConfigMap: _validate_immutable_data,
    core.Secret: _validate_secret_update,
    apps.Deployment: _validate_selector_update,
    apps.ReplicaSet: _validate_selector_update,
}

_STATUS: dict[type[Message], UpdateCheck] = {
    core.Pod: _validate_pod_status,
    core.Service: _validate_service_status,
    core.Namespace: _validate_namespace_status,
    core.Node: _validate_node_status,
    core.ReplicationController: lambda new, old, errs: _validate_replica_counts(new.status, errs),
    apps.Deployment: lambda new, old, errs: _validate_replica_counts(new.status, errs),
    apps.ReplicaSet: lambda new, old, errs: _validate_replica_counts(new.status, errs),
}

_NAME_FNS: dict[type[Message], NameFn] = {
    core.Namespace: is_dns1123_label,
    core.Service: is_dns1035_label,
}


def _finish(specific: Errs, generic: Errs) -> list[FieldError]:
    """Specific errors first; a generic "Required value" only where nothing else was said of that field."""
    said = {e.path for e in specific}
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for e in [*specific, *(g for g in generic if g.path not in said)]:
        if (e.path, e.message) not in seen:
            seen.add((e.path, e.message))
            out.append(e)
    return out


def _meta_of(obj: Message) -> meta.ObjectMeta:
    m: meta.ObjectMeta = obj.metadata  # type: ignore[attr-defined]
    return m


def validate(obj: Message, *, old: Message | None = None) -> list[FieldError]:
    """Create validation (old is None) or update validation of a (defaulted) object of any kind."""
    info = registry.for_class_or_none(type(obj))
    errs = Errs()
    validate_object_meta(_meta_of(obj), namespaced=info.namespaced if info else True,
                         name_fn=_NAME_FNS.get(type(obj), is_dns1123_subdomain), path="metadata", errs=errs)
    check = _CREATE.get(type(obj))
    if check is not None:
        check(obj, errs)
    if old is not None:
        validate_object_meta_update(_meta_of(obj), _meta_of(old), "metadata", errs)
        update = _UPDATE.get(type(obj))
        if update is not None:
            update(obj, old, errs)
    generic = Errs()
    walk_required(obj, "", generic, skip=frozenset({"status"}))
    return _finish(errs, generic)


def validate_status_update(obj: Message, old: Message) -> list[FieldError]:
    """The status subresource: metadata may not be renamed, and the status must make sense."""
    errs = Errs()
    validate_object_meta_update(_meta_of(obj), _meta_of(old), "metadata", errs)
    check = _STATUS.get(type(obj))
    if check is not None:
        check(obj, old, errs)
    generic = Errs()
    if "status" in obj.DESCRIPTOR.fields_by_name and obj.HasField("status"):
        walk_required(getattr(obj, "status"), "status", generic)  # noqa: B009
    return _finish(errs, generic)


__all__ = ["Errs", "validate", "validate_status_update"]
