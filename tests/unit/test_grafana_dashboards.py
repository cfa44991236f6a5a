"""The Grafana dashboards and their provisioning (deploy/grafana), checked as files.

Grafana is not run here. What is checked is what breaks a dashboard silently: a panel
on another datasource, a variable used but not defined, a hard-coded window, a metric
name the worker does not export (a typo shows "no data", not an error). That every
query returns data is checked against a real Prometheus elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import Metric

from sync_worker.metrics import Metrics

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "stockcast-prometheus"}
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/stockcast"
"""Where dashboards/stockcast.yml expects deploy/grafana/dashboards to be mounted."""

EXPECTED = {"live-room", "sync-health", "capacity"}
VARIABLES = {"session", "sku", "channel", "connector", "instance", "job"}
BUILTINS = {"__rate_interval", "__interval", "__range"}
PROMETHEUS_SERIES = {"up"}
"""Series Prometheus writes itself for every scrape target, not the worker."""

_VARIABLE_MATCHER = re.compile(r'(\w+)=~"\$(\w+)"')
_BUILTIN = re.compile(r"\$(__\w+)")
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[([^\]]*)\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def _load(name: str) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads((DASHBOARDS / f"{name}.json").read_text())
    return dashboard


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a row's collapsed panels


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every target."""
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def _family_names(family: Metric) -> set[str]:
    """The series names a metric family exposes, samples or not (a labelled metric has
    no sample until a label set is used)."""
    match family.type:
        case "counter":
            return {f"{family.name}_total", f"{family.name}_created"}
        case "histogram":
            return {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
        case "summary":
            return {family.name, f"{family.name}_sum", f"{family.name}_count"}
        case "info":
            return {f"{family.name}_info"}
        case _:
            return {family.name}


def _exported_names() -> set[str]:
    names = {
        name for family in Metrics.create().registry.collect() for name in _family_names(family)
    }
    process = ProcessCollector(registry=None)
    names |= {name for family in process.collect() for name in _family_names(family)}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    keywords, label names or label values."""
    stripped = _STRING.sub('""', expr)
    stripped = _MATCHERS.sub(" ", stripped)
    stripped = _RANGE.sub(" ", stripped)
    stripped = _LABEL_LIST.sub(" ", stripped)
    return {
        name
        for name, call in _IDENTIFIER.findall(stripped)
        if not call and name.lower() not in _KEYWORDS
    }


def test_metric_names_reads_selectors_not_labels_or_functions() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, connector) (rate(a_bucket{connector=~"$connector",'
        ' x="y{z}"}[$__rate_interval]))) and on (sku) max by (sku) (b{sku=~"$sku"}) / c'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}


def test_the_three_dashboards_are_there() -> None:
    assert {path.stem for path in DASHBOARDS.glob("*.json")} == EXPECTED


def test_dashboards_have_distinct_uids_and_titles() -> None:
    dashboards = [_load(name) for name in sorted(EXPECTED)]
    uids = [dashboard["uid"] for dashboard in dashboards]
    titles = [dashboard["title"] for dashboard in dashboards]
    assert all(uids)
    assert len(set(uids)) == len(uids)
    assert all(titles)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_is_a_grafana_10_model(name: str) -> None:
    dashboard = _load(name)
    assert dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None  # Grafana assigns it
    assert dashboard["panels"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_is_complete(name: str) -> None:
    panels = list(_panels(_load(name)["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"
    for panel in panels:
        where = f"{name}: {panel.get('title')!r}"
        assert panel.get("title"), where
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), where
        assert grid["x"] >= 0, where
        assert grid["x"] + grid["w"] <= 24, where
        if panel["type"] == "row":
            continue
        assert len(panel.get("description", "")) > 40, f"{where}: say what to do when it is bad"
        assert panel["datasource"] == DATASOURCE, where
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        targets = panel["targets"]
        assert targets, where
        ref_ids = [target.get("refId") for target in targets]
        assert all(ref_ids), where
        assert len(set(ref_ids)) == len(ref_ids), where
        for target in targets:
            assert target["datasource"] == DATASOURCE, where
            assert isinstance(target.get("expr"), str), where
            assert target["expr"].strip(), where


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_panels_do_not_overlap(name: str) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in _panels(_load(name)["panels"]):
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variables_are_label_values_queries_on_the_datasource(name: str) -> None:
    exported = _exported_names()
    for variable in _load(name)["templating"]["list"]:
        assert variable["name"] in VARIABLES, variable["name"]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        query = variable["query"]
        match = _LABEL_VALUES.match(query)
        assert match, f"${variable['name']}: {query!r} is not label_values(metric, label)"
        assert match[1] in exported, f"${variable['name']}: the worker exports no {match[1]}"
        assert match[2] == variable["name"]
        if variable.get("includeAll"):
            assert variable["allValue"] in {".+", ".*"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variables_appear_only_as_regex_matchers_on_their_own_label(name: str) -> None:
    dashboard = _load(name)
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    for title, expr in _queries(dashboard):
        assert "${" not in expr, title
        for label, variable in _VARIABLE_MATCHER.findall(expr):
            assert variable in defined, f"{title}: ${variable} is not defined"
            assert label == variable, f"{title}: {label}=~ takes ${label}, not ${variable}"
        rest = _BUILTIN.sub(
            lambda found: "" if found[1] in BUILTINS else found[0],
            _VARIABLE_MATCHER.sub("", expr),
        )
        assert "$" not in rest, f"{title}: {expr}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_queries_use_grafana_windows_and_no_constant_fallbacks(name: str) -> None:
    for title, expr in _queries(_load(name)):
        for window in _RANGE.findall(_STRING.sub('""', expr)):
            assert window in {"$__rate_interval", "$__range", "$__interval"}, f"{title}: {expr}"
        assert not re.search(r"\bvector\s*\(", expr), f"{title}: a constant hides no data"
        if "_bucket" in expr:  # buckets only make sense summed by le into a quantile
            assert "histogram_quantile" in expr, title
            assert re.search(r"\bby\s*\([^)]*\ble\b", expr), title


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_metric_is_one_the_worker_exports(name: str) -> None:
    exported = _exported_names() | PROMETHEUS_SERIES
    for title, expr in _queries(_load(name)):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= exported, f"{title}: not exported: {sorted(names - exported)}"


def test_process_metrics_come_from_the_process_collector() -> None:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= {
        sample.name for family in registry.collect() for sample in family.samples
    }


def test_datasource_provisioning_has_the_uid_the_dashboards_use() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "stockcast.yml").read_text())
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    assert {"type": datasource["type"], "uid": datasource["uid"]} == DATASOURCE
    assert datasource["access"] == "proxy"
    variable = re.fullmatch(r"\$\{?(\w+)\}?", datasource["url"])
    assert variable, "the URL comes from the environment"
    # Grafana has no ${VAR:-default}: the default lives in grafana.env
    defaults = dict(
        line.split("=", 1)
        for line in (GRAFANA / "grafana.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert defaults[variable[1]].startswith("http://")


def test_dashboard_provisioning_points_at_the_dashboards_folder() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "stockcast.yml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT
    assert provider["folder"]
