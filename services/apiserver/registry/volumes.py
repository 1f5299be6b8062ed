"""Pod volumes and volume mounts: validation (ValidateVolumes, ValidateVolumeMounts) and defaults.

Used by podspec (volumes of pods and pod templates) and containers (each container's volumeMounts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, child, index
from services.apiserver.registry.formats import is_dns1123_label
from services.apiserver.registry.protofields import has_field

DEFAULT_FILE_MODE = 0o644  # 420: configMap/secret/downwardAPI/projected defaultMode

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
_VOLUME_SOURCES = (("host_path", "hostPath"), ("empty_dir", "emptyDir"), ("secret", "secret"), ("nfs", "nfs"),
                   ("persistent_volume_claim", "persistentVolumeClaim"), ("downward_api", "downwardAPI"),
                   ("config_map", "configMap"), ("projected", "projected"), ("csi", "csi"),
                   ("ephemeral", "ephemeral"), ("image", "image"))
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                    "BlockDevice")


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
        kinds = [name for field, name in _PROJECTIONS if has_field(src, field)]
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


def validate_volumes(volumes: Sequence[core.Volume], path: str, errs: Errs) -> set[str]:
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
            if has_field(v, field_name):
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


def validate_volume_mounts(mounts: Sequence[core.VolumeMount], volumes: set[str], path: str,
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


def default_volume(v: core.Volume) -> None:
    if not any(has_field(v, s) for s, _ in _VOLUME_SOURCES):
        v.empty_dir.SetInParent()  # a volume with no source is an emptyDir
    if v.HasField("secret") and not v.secret.HasField("default_mode"):
        v.secret.default_mode = DEFAULT_FILE_MODE
    if v.HasField("config_map") and not v.config_map.HasField("default_mode"):
        v.config_map.default_mode = DEFAULT_FILE_MODE
    if v.HasField("downward_api") and not v.downward_api.HasField("default_mode"):
        v.downward_api.default_mode = DEFAULT_FILE_MODE
    if v.HasField("projected"):
        if not v.projected.HasField("default_mode"):
            v.projected.default_mode = DEFAULT_FILE_MODE
        for src in v.projected.sources:
            sat = src.service_account_token
            if src.HasField("service_account_token") and not sat.HasField("expiration_seconds"):
                sat.expiration_seconds = 3600
    if v.HasField("host_path") and not v.host_path.HasField("type"):
        v.host_path.type = ""
    if v.HasField("ephemeral") and v.ephemeral.HasField("volume_claim_template"):
        spec = v.ephemeral.volume_claim_template.spec
        if not spec.HasField("volume_mode"):
            spec.volume_mode = "Filesystem"
