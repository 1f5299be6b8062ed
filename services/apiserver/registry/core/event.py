"""Events: validation (namespace of the involved object, the fields of new-style events) and field selectors."""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs
from services.apiserver.registry.formats import is_qualified_name
from services.apiserver.registry.kindstrategy import KindStrategy


def validate(ev: core.Event, errs: Errs) -> None:
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


def fields(e: core.Event) -> dict[str, str]:
    io = e.involved_object
    return {"metadata.name": e.metadata.name, "metadata.namespace": e.metadata.namespace,
            "involvedObject.kind": io.kind, "involvedObject.namespace": io.namespace,
            "involvedObject.name": io.name, "involvedObject.uid": io.uid,
            "involvedObject.apiVersion": io.api_version, "involvedObject.resourceVersion": io.resource_version,
            "involvedObject.fieldPath": io.field_path, "reason": e.reason, "type": e.type,
            "source": e.source.component, "reportingComponent": e.reporting_component}


STRATEGY = KindStrategy(core.Event, validate=validate, fields=fields)
