"""DaemonSet and StatefulSet defaulting and validation (pkg/apis/apps): each refusal names its field.

The valid examples are test_validation.EXAMPLES' (every kind has one there); these rows mutate them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from services.apiserver.registry import validate, validate_status_update
from tests.unit.test_validation import build, lines, setitem, spec, tpl


def test_daemonset_defaults() -> None:
    ds = build("DaemonSet")
    assert isinstance(ds, apps.DaemonSet)
    st = ds.spec.update_strategy
    assert st.type == "RollingUpdate"
    assert (st.rolling_update.max_unavailable.type, st.rolling_update.max_unavailable.int_val) == (0, 1)
    assert (st.rolling_update.max_surge.type, st.rolling_update.max_surge.int_val) == (0, 0)
    assert ds.spec.revision_history_limit == 10
    assert ds.spec.template.spec.restart_policy == "Always"


def test_statefulset_defaults() -> None:
    ss = build("StatefulSet", lambda d: spec(d).pop("replicas"))
    assert isinstance(ss, apps.StatefulSet)
    assert ss.spec.replicas == 1
    assert ss.spec.pod_management_policy == "OrderedReady"
    assert ss.spec.update_strategy.type == "RollingUpdate"
    assert ss.spec.update_strategy.rolling_update.HasField("partition")
    assert ss.spec.update_strategy.rolling_update.partition == 0
    assert ss.spec.revision_history_limit == 10


def test_statefulset_service_name_is_optional() -> None:
    assert lines(validate(build("StatefulSet", lambda d: spec(d).pop("serviceName")))) == []


def test_ondelete_has_no_rolling_update_defaults() -> None:
    ds = build("DaemonSet", lambda d: setitem(spec(d), "updateStrategy", {"type": "OnDelete"}))
    assert isinstance(ds, apps.DaemonSet)
    assert not ds.spec.update_strategy.HasField("rolling_update")
    assert lines(validate(ds)) == []


PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}

# (id, kind, mutation, expected "path: message" line)
RULES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("ds selector required", "DaemonSet", lambda d: spec(d).pop("selector"), "spec.selector: Required value"),
    ("ds selector empty", "DaemonSet", lambda d: setitem(spec(d), "selector", {}),
     "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"),
    ("ds selector mismatch", "DaemonSet", lambda d: setitem(tpl(d)["metadata"], "labels", {"app": "db"}),
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"db"}: `selector` does not match '
     "template `labels`"),
    ("ds restartPolicy", "DaemonSet", lambda d: setitem(tpl(d)["spec"], "restartPolicy", "Never"),
     'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'),
    ("ds activeDeadlineSeconds", "DaemonSet", lambda d: setitem(tpl(d)["spec"], "activeDeadlineSeconds", 5),
     "spec.template.spec.activeDeadlineSeconds: Invalid value: 5: activeDeadlineSeconds in DaemonSet is not "
     "Supported"),
    ("ds minReadySeconds", "DaemonSet", lambda d: setitem(spec(d), "minReadySeconds", -1),
     "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"),
    ("ds strategy type", "DaemonSet", lambda d: setitem(spec(d), "updateStrategy", {"type": "Blue"}),
     'spec.updateStrategy.type: Unsupported value: "Blue": supported values: "OnDelete", "RollingUpdate"'),
    ("ds maxUnavailable and maxSurge", "DaemonSet",
     lambda d: setitem(spec(d), "updateStrategy", {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}),
     "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: "
     "may not be set when maxUnavailable is non-zero"),
    ("ds both zero", "DaemonSet",
     lambda d: setitem(spec(d), "updateStrategy", {"rollingUpdate": {"maxUnavailable": 0}}),
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"),
    ("ds surge only", "DaemonSet",
     lambda d: setitem(spec(d), "updateStrategy", {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}}), None),
    ("ds over 100%", "DaemonSet",
     lambda d: setitem(spec(d), "updateStrategy", {"rollingUpdate": {"maxUnavailable": "120%"}}),
     'spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
     'StrVal:"120%"}: must not be greater than 100%'),
    ("ds revisionHistoryLimit", "DaemonSet", lambda d: setitem(spec(d), "revisionHistoryLimit", -1),
     "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"),
    ("sts selector required", "StatefulSet", lambda d: spec(d).pop("selector"), "spec.selector: Required value"),
    ("sts selector empty", "StatefulSet", lambda d: setitem(spec(d), "selector", {}),
     "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset"),
    ("sts selector mismatch", "StatefulSet", lambda d: setitem(tpl(d)["metadata"], "labels", {"app": "db"}),
     'spec.template.metadata.labels: Invalid value: map[string]string{"app":"db"}: `selector` does not match '
     "template `labels`"),
    ("sts replicas", "StatefulSet", lambda d: setitem(spec(d), "replicas", -1),
     "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
    ("sts podManagementPolicy", "StatefulSet", lambda d: setitem(spec(d), "podManagementPolicy", "Random"),
     'spec.podManagementPolicy: Unsupported value: "Random": supported values: "OrderedReady", "Parallel"'),
    ("sts parallel", "StatefulSet", lambda d: setitem(spec(d), "podManagementPolicy", "Parallel"), None),
    ("sts strategy type", "StatefulSet", lambda d: setitem(spec(d), "updateStrategy", {"type": "Blue"}),
     'spec.updateStrategy.type: Unsupported value: "Blue": supported values: "OnDelete", "RollingUpdate"'),
    ("sts ondelete with rollingUpdate", "StatefulSet",
     lambda d: setitem(spec(d), "updateStrategy", {"type": "OnDelete", "rollingUpdate": {"partition": 1}}),
     "spec.updateStrategy.rollingUpdate: Invalid value: &apps.RollingUpdateStatefulSetStrategy{...}: only allowed "
     "for updateStrategy 'RollingUpdate'"),
    ("sts partition", "StatefulSet",
     lambda d: setitem(spec(d), "updateStrategy", {"rollingUpdate": {"partition": -1}}),
     "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"),
    ("sts maxUnavailable zero", "StatefulSet",
     lambda d: setitem(spec(d), "updateStrategy", {"rollingUpdate": {"maxUnavailable": 0}}),
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, "
     "StrVal:\"\"}: must be greater than 0"),
    ("sts ordinals", "StatefulSet", lambda d: setitem(spec(d), "ordinals", {"start": -1}),
     "spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0"),
    ("sts retention policy", "StatefulSet",
     lambda d: setitem(spec(d), "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Keep"}),
     'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: '
     '"Retain", "Delete"'),
    ("sts volumeClaimTemplates", "StatefulSet", lambda d: setitem(spec(d), "volumeClaimTemplates", [PVC]),
     "spec.volumeClaimTemplates: Forbidden: not supported until pybernetes has persistent volumes; use emptyDir or "
     "hostPath volumes"),
    ("sts activeDeadlineSeconds", "StatefulSet", lambda d: setitem(tpl(d)["spec"], "activeDeadlineSeconds", 5),
     "spec.template.spec.activeDeadlineSeconds: Invalid value: 5: activeDeadlineSeconds in StatefulSet is not "
     "Supported"),
]


@pytest.mark.parametrize(("kind", "mutate", "want"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(kind: str, mutate: Callable[[dict[str, Any]], Any], want: str | None) -> None:
    got = lines(validate(build(kind, mutate)))
    if want is None:
        assert got == []
    else:
        assert want in got, "\n".join(got)


UPDATES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("ds selector immutable", "DaemonSet",
     lambda d: (setitem(spec(d), "selector", {"matchLabels": {"app": "x"}}),
                setitem(tpl(d)["metadata"], "labels", {"app": "x"})),
     'spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, '
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"),
    ("ds template may change", "DaemonSet", lambda d: setitem(tpl(d)["spec"]["containers"][0], "image", "nginx:2"),
     None),
    ("sts replicas may change", "StatefulSet", lambda d: setitem(spec(d), "replicas", 5), None),
    ("sts template may change", "StatefulSet",
     lambda d: setitem(tpl(d)["spec"]["containers"][0], "image", "nginx:2"), None),
    ("sts serviceName immutable", "StatefulSet", lambda d: setitem(spec(d), "serviceName", "other"),
     "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
     "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
     "forbidden"),
]


@pytest.mark.parametrize(("kind", "mutate", "want"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES])
def test_update_rule(kind: str, mutate: Callable[[dict[str, Any]], Any], want: str | None) -> None:
    got = lines(validate(build(kind, mutate), old=build(kind)))
    if want is None:
        assert got == []
    else:
        assert want in got, "\n".join(got)


def test_status_counts() -> None:
    old = build("StatefulSet")
    new = build("StatefulSet")
    assert isinstance(new, apps.StatefulSet)
    new.status.replicas = 1
    new.status.ready_replicas = 2
    assert "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas" in \
        lines(validate_status_update(new, old))
    ds_old, ds = build("DaemonSet"), build("DaemonSet")
    assert isinstance(ds, apps.DaemonSet)
    ds.status.number_ready = -1
    assert "status.numberReady: Invalid value: -1: must be greater than or equal to 0" in \
        lines(validate_status_update(ds, ds_old))
