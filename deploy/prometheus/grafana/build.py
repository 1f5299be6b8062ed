"""Generate the Grafana dashboards in this directory (the same views as ../consoles).

    python deploy/prometheus/grafana/build.py      # rewrites *.json next to this file

Each dashboard picks its Prometheus through a `datasource` variable, so importing one needs no edits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}


class Board:
    def __init__(self, uid: str, title: str, variables: list[dict[str, Any]] | None = None) -> None:
        self.uid, self.title = uid, title
        self.variables = variables or []
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = self._line_h = 0

    def _pos(self, w: int, h: int) -> dict[str, int]:
        if self._x + w > 24:
            self._x, self._y, self._line_h = 0, self._y + self._line_h, 0
        pos = {"x": self._x, "y": self._y, "w": w, "h": h}
        self._x += w
        self._line_h = max(self._line_h, h)
        return pos

    def row(self, title: str) -> None:
        self._x, self._y, self._line_h = 0, self._y + self._line_h, 0
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self._y, "w": 24, "h": 1}, "panels": []})
        self._y += 1

    def panel(self, kind: str, title: str, exprs: list[tuple[str, str]], *, unit: str = "short", w: int = 12,
              h: int = 8, description: str = "") -> None:
        targets = [{"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": legend,
                    **({"instant": True, "format": "table"} if kind == "table" else {})}
                   for i, (e, legend) in enumerate(exprs)]
        p: dict[str, Any] = {"id": len(self.panels) + 1, "type": kind, "title": title, "description": description,
                             "datasource": DS, "gridPos": self._pos(w, h), "targets": targets,
                             "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
        if kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"}
        self.panels.append(p)

    def stat(self, title: str, exprs: list[tuple[str, str]], **kw: Any) -> None:
        self.panel("stat", title, exprs, **kw)

    def graph(self, title: str, exprs: list[tuple[str, str]], **kw: Any) -> None:
        self.panel("timeseries", title, exprs, **kw)

    def table(self, title: str, exprs: list[tuple[str, str]], **kw: Any) -> None:
        self.panel("table", title, exprs, **kw)

    def json(self) -> dict[str, Any]:
        templating = [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus",
                       "current": {}, "hide": 0}, *self.variables]
        return {"uid": self.uid, "title": self.title, "tags": ["pybernetes"], "editable": True,
                "schemaVersion": 39, "version": 1, "timezone": "browser", "refresh": "30s",
                "time": {"from": "now-1h", "to": "now"}, "templating": {"list": templating},
                "panels": self.panels,
                "links": [{"type": "dashboards", "tags": ["pybernetes"], "asDropdown": True, "title": "pybernetes"}]}


def node_var(job: str) -> dict[str, Any]:
    return {"name": "node", "type": "query", "datasource": DS, "query": f'label_values(up{{job="{job}"}}, node)',
            "refresh": 2, "includeAll": True, "multi": True, "current": {}, "hide": 0}


def overview() -> Board:
    b = Board("pybernetes-overview", "pybernetes / Cluster overview")
    for job in ("apiserver", "etcd", "scheduler", "controller-manager", "kubelet", "proxy"):
        b.stat(f"{job} up", [(f'sum(up{{job="{job}"}})', "up"), (f'count(up{{job="{job}"}})', "targets")], w=4, h=4)
    b.row("Nodes and pods")
    b.stat("Nodes Ready", [('sum(max by (node) (kube_node_status_condition{condition="Ready",status="true"}))',
                            "Ready"),
                           ('count(max by (node) (kube_node_status_condition{condition="Ready"}))', "nodes")], w=6)
    b.table("Nodes not Ready",
            [('max by (node) (kube_node_status_condition{condition="Ready",status="true"}) == 0', "{{node}}")], w=6)
    b.graph("Pods by phase", [("sum by (phase) (kube_pod_status_phase)", "{{phase}}")], w=12)
    b.row("Health")
    b.table("Firing alerts", [('ALERTS{alertstate="firing"}', "{{alertname}}")], w=12)
    b.graph("Targets up by job", [("sum by (job) (up)", "{{job}}")], w=12)
    b.graph("apiserver requests/s by code", [("sum by (code) (rate(apiserver_request_total[1m]))", "{{code}}")],
            unit="reqps", w=24)
    return b


def apiserver() -> Board:
    b = Board("pybernetes-apiserver", "pybernetes / apiserver")
    b.stat("Requests/s", [("sum(rate(apiserver_request_total[1m]))", "")], unit="reqps", w=6, h=4)
    b.stat("5xx ratio", [('sum(rate(apiserver_request_total{code=~"5.."}[5m])) / '
                          "sum(rate(apiserver_request_total[5m]))", "")], unit="percentunit", w=6, h=4)
    b.stat("p99 latency (non-watch)", [("histogram_quantile(0.99, sum by (le) "
                                        '(rate(apiserver_request_duration_seconds_bucket{verb!="watch"}[5m])))', "")],
           unit="s", w=6, h=4)
    b.stat("Up", [('sum(up{job="apiserver"})', "")], w=6, h=4)
    b.graph("Requests/s by verb", [("sum by (verb) (rate(apiserver_request_total[1m]))", "{{verb}}")], unit="reqps")
    b.graph("Errors/s by code", [('sum by (code) (rate(apiserver_request_total{code=~"[45].."}[1m]))', "{{code}}")],
            unit="reqps")
    b.graph("p99 latency by verb (watch excluded)",
            [("histogram_quantile(0.99, sum by (verb, le) "
              '(rate(apiserver_request_duration_seconds_bucket{verb!="watch"}[5m])))', "{{verb}}")], unit="s")
    b.graph("etcd request p99 by operation",
            [("histogram_quantile(0.99, sum by (operation, le) "
              '(rate(etcd_request_duration_seconds_bucket{job="apiserver"}[5m])))', "{{operation}}")], unit="s")
    b.graph("Stored objects by resource", [("sum by (resource) (apiserver_storage_objects)", "{{resource}}")], w=24)
    return b


def scheduler() -> Board:
    b = Board("pybernetes-scheduler", "pybernetes / scheduler")
    b.stat("Scheduled/s", [('sum(rate(scheduler_schedule_attempts_total{result="scheduled"}[1m]))', "")],
           unit="ops", w=6, h=4)
    b.stat("Pending pods", [("sum(scheduler_pending_pods)", "")], w=6, h=4)
    b.stat("Attempt p99", [("histogram_quantile(0.99, sum by (le) "
                            "(rate(scheduler_scheduling_attempt_duration_seconds_bucket[5m])))", "")], unit="s",
           w=6, h=4)
    b.stat("Leader", [('max(leader_election_master_status{job="scheduler"})', "")], w=6, h=4)
    b.graph("Attempts/s by result", [("sum by (result) (rate(scheduler_schedule_attempts_total[1m]))", "{{result}}")],
            unit="ops")
    b.graph("Scheduling attempt latency",
            [(f"histogram_quantile({q}, sum by (le) (rate(scheduler_scheduling_attempt_duration_seconds_bucket[5m])))",
              f"p{int(q * 100)}") for q in (0.5, 0.99)], unit="s")
    b.graph("Pending pods by queue", [("sum by (queue) (scheduler_pending_pods)", "{{queue}}")], w=24)
    return b


def kubelet() -> Board:
    b = Board("pybernetes-kubelet", "pybernetes / kubelet", [node_var("kubelet")])
    sel = 'job="kubelet",node=~"$node"'
    b.table("Kubelets", [(f"up{{{sel}}}", "{{node}}")], w=24, h=6)
    b.graph("Running pods", [(f"kubelet_running_pods{{{sel}}}", "{{node}}")])
    b.graph("Running containers", [(f"kubelet_running_containers{{{sel}}}", "{{node}}")])
    b.graph("Pod start latency p99",
            [(f"histogram_quantile(0.99, sum by (node, le) (rate(kubelet_pod_start_duration_seconds_bucket{{{sel}}}"
              "[10m])))", "{{node}}")], unit="s")
    b.graph("Runtime operation errors/s",
            [(f"sum by (node, operation_type) (rate(kubelet_runtime_operations_errors_total{{{sel}}}[5m]))",
              "{{node}} {{operation_type}}")], unit="ops")
    b.graph("Runtime operation p99",
            [(f"histogram_quantile(0.99, sum by (operation_type, le) "
              f"(rate(kubelet_runtime_operations_duration_seconds_bucket{{{sel}}}[5m])))", "{{operation_type}}")],
            unit="s", w=24)
    return b


def proxy() -> Board:
    b = Board("pybernetes-proxy", "pybernetes / proxy", [node_var("proxy")])
    sel = 'job="proxy",node=~"$node"'
    b.table("Proxies", [(f"up{{{sel}}}", "{{node}}")], w=24, h=6)
    b.graph("Rule sync p99",
            [(f"histogram_quantile(0.99, sum by (node, le) (rate(kubeproxy_sync_proxy_rules_duration_seconds_bucket"
              f"{{{sel}}}[5m])))", "{{node}}")], unit="s")
    b.graph("Syncs/s", [(f"rate(kubeproxy_sync_proxy_rules_duration_seconds_count{{{sel}}}[5m])", "{{node}}")],
            unit="ops")
    b.graph("Seconds since last sync", [(f"time() - kubeproxy_sync_proxy_rules_last_timestamp_seconds{{{sel}}}",
                                         "{{node}}")], unit="s", w=24)
    return b


BOARDS = {"overview": overview, "apiserver": apiserver, "scheduler": scheduler, "kubelet": kubelet, "proxy": proxy}


def main() -> None:
    for name, build in BOARDS.items():
        path = HERE / f"pybernetes-{name}.json"
        path.write_text(json.dumps(build().json(), indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()
