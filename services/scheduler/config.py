"""Scheduler configuration files (like KubeSchedulerConfiguration) -> one Profile.

Accepted: `apiVersion: pybernetes.io/v1, kind: SchedulerConfiguration` with the profile's fields at the top
level (or under `profiles`), and `apiVersion: kubescheduler.config.k8s.io/v1, kind: KubeSchedulerConfiguration`
(profiles[0] is used). Fields: schedulerName, percentageOfNodesToScore, podInitialBackoffSeconds,
podMaxBackoffSeconds, plugins.{filter,score}.{enabled: [{name, weight}], disabled: [{name}]} (disabled '*'
drops the defaults; enabled adds or re-weights) and pluginConfig [{name, args}], e.g. NodeResourcesFit
args.scoringStrategy {type: LeastAllocated|MostAllocated, resources: [{name, weight}]}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.scheduler.framework import FilterPlugin, Framework, Plugin, ScorePlugin
from services.scheduler.plugins import ALIASES, DEFAULT_FILTERS, DEFAULT_SCORES, REGISTRY

API_VERSIONS = {("pybernetes.io/v1", "SchedulerConfiguration"),
                ("kubescheduler.config.k8s.io/v1", "KubeSchedulerConfiguration")}
DEFAULT_SCHEDULER_NAME = "default-scheduler"


class ConfigError(ValueError):
    pass


@dataclass
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    filters: list[str] = field(default_factory=lambda: list(DEFAULT_FILTERS))
    scores: list[tuple[str, int]] = field(default_factory=lambda: list(DEFAULT_SCORES))
    plugin_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff: float = 1.0
    pod_max_backoff: float = 10.0

    def build(self) -> Framework:
        """Instantiate the plugins (one instance per name, shared by filter and score)."""
        instances: dict[str, Plugin] = {}

        def get(name: str) -> Plugin:
            if name not in instances:
                instances[name] = REGISTRY[name](self.plugin_args.get(name))
            return instances[name]

        filters = []
        for n in self.filters:
            p = get(n)
            if not isinstance(p, FilterPlugin):
                raise ConfigError(f"plugin {n!r} is not a filter plugin")
            filters.append(p)
        scores = []
        for n, w in self.scores:
            p = get(n)
            if not isinstance(p, ScorePlugin):
                raise ConfigError(f"plugin {n!r} is not a score plugin")
            scores.append((p, w))
        return Framework(self.scheduler_name, filters, scores, self.percentage_of_nodes_to_score)


def _canon(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: plugin name must be a non-empty string")
    canon: str = ALIASES.get(name, name)
    if canon != "*" and canon not in REGISTRY:
        raise ConfigError(f"{where}: unknown plugin {canon!r} (known: {', '.join(sorted(REGISTRY))})")
    return canon


def _set(section: Any, where: str) -> tuple[list[tuple[str, int | None]], set[str]]:
    if section is None:
        return [], set()
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: must be a mapping with enabled/disabled")
    enabled = []
    for i, e in enumerate(section.get("enabled") or []):
        name = _canon(e.get("name") if isinstance(e, dict) else None, f"{where}.enabled[{i}]")
        w = e.get("weight")
        if w is not None and (not isinstance(w, int) or w < 0 or w > 100):
            raise ConfigError(f"{where}.enabled[{i}].weight: must be an integer 0..100")
        enabled.append((name, w))
    disabled = {_canon(d.get("name") if isinstance(d, dict) else None, f"{where}.disabled[{i}]")
                for i, d in enumerate(section.get("disabled") or [])}
    return enabled, disabled


def profile_from_dict(doc: dict[str, Any]) -> Profile:
    if not isinstance(doc, dict):
        raise ConfigError("the configuration must be a YAML mapping")
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in API_VERSIONS:
        raise ConfigError(f"unsupported apiVersion/kind {key[0]}/{key[1]} (want pybernetes.io/v1 "
                          "SchedulerConfiguration or kubescheduler.config.k8s.io/v1 KubeSchedulerConfiguration)")
    prof: dict[str, Any] = doc
    profiles = doc.get("profiles")
    if profiles:
        if not isinstance(profiles, list) or not isinstance(profiles[0], dict):
            raise ConfigError("profiles: must be a list of mappings")
        prof = profiles[0]
    out = Profile()
    out.scheduler_name = str(prof.get("schedulerName") or doc.get("schedulerName") or DEFAULT_SCHEDULER_NAME)
    pct = doc.get("percentageOfNodesToScore", prof.get("percentageOfNodesToScore", 0)) or 0
    if not isinstance(pct, int) or not 0 <= pct <= 100:
        raise ConfigError("percentageOfNodesToScore: must be an integer 0..100")
    out.percentage_of_nodes_to_score = pct
    out.pod_initial_backoff = float(doc.get("podInitialBackoffSeconds", 1))
    out.pod_max_backoff = float(doc.get("podMaxBackoffSeconds", 10))
    if out.pod_initial_backoff <= 0 or out.pod_max_backoff < out.pod_initial_backoff:
        raise ConfigError("podInitialBackoffSeconds must be > 0 and <= podMaxBackoffSeconds")
    plugins = prof.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise ConfigError("plugins: must be a mapping")
    f_en, f_dis = _set(plugins.get("filter"), "plugins.filter")
    filters = [] if "*" in f_dis else [n for n in out.filters if n not in f_dis]
    for n, _ in f_en:
        if n not in filters:
            filters.append(n)
    out.filters = filters
    s_en, s_dis = _set(plugins.get("score"), "plugins.score")
    scores = [] if "*" in s_dis else [(n, w) for n, w in out.scores if n not in s_dis]
    for n, w in s_en:
        idx = next((i for i, (m, _) in enumerate(scores) if m == n), None)
        weight = w if w is not None else (scores[idx][1] if idx is not None else 1)
        if idx is None:
            scores.append((n, weight))
        else:
            scores[idx] = (n, weight)
    out.scores = scores
    for i, pc in enumerate(prof.get("pluginConfig") or []):
        if not isinstance(pc, dict):
            raise ConfigError(f"pluginConfig[{i}]: must be a mapping")
        name = _canon(pc.get("name"), f"pluginConfig[{i}]")
        args = pc.get("args") or {}
        if not isinstance(args, dict):
            raise ConfigError(f"pluginConfig[{i}].args: must be a mapping")
        out.plugin_args[name] = args
    try:
        out.build()  # validates plugin kinds and args
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(str(e)) from None
    return out


def load(path: str | Path | None) -> Profile:
    if not path:
        return Profile()
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {e}") from None
    try:
        return profile_from_dict(doc)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
