"""deploy/prometheus without a worker: promtool's checks and the rules' unit tests, and
the conventions stated at the top of rules/stockcast.rules.yml.

Needs Prometheus's tools, not Kafka: `make test` fetched them; a bare pytest fetches them
here the same way (sync_worker/devprometheus.py).
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from sync_worker import devprometheus
from tests.integration.support import PROMETHEUS_DIR, alert_form

RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning"}
ANNOTATIONS = {"summary", "description", "runbook"}


def rules(kind: str) -> list[dict[str, Any]]:
    """Every rule of kind ``alert`` or ``record`` in deploy/prometheus/rules."""
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


ALERTS = {rule["alert"]: rule for rule in rules("alert")}


@pytest.fixture(scope="module")
def tools() -> devprometheus.PrometheusTools:
    return devprometheus.fetch(devprometheus.DevPrometheusConfig())


@pytest.mark.parametrize("step", range(3), ids=["check config", "check rules", "test rules"])
def test_promtool_accepts_the_config_the_rules_and_their_unit_tests(
    tools: devprometheus.PrometheusTools, step: int
) -> None:
    command = devprometheus.check_commands(tools, devprometheus.DevPrometheusConfig())[step]

    proc = subprocess.run(command, capture_output=True, text=True, check=False)

    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout}{proc.stderr}"


def test_the_scrape_config_scrapes_the_workers_metrics_under_the_rules_job() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))

    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "stockcast"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"]
    assert config["rule_files"] == ["rules/*.yml"]
    on_up = [rule["expr"] for rule in rules("alert") if re.search(r"\bup\b", rule["expr"])]
    assert on_up
    assert all('up{job="stockcast"}' in expr for expr in on_up)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_follows_the_convention(name: str) -> None:
    rule = ALERTS[name]

    form = alert_form(rule["expr"])  # raises when the expr is not in the convention's form

    assert form.clauses or form.absent_of
    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) == ANNOTATIONS
    assert all(text.strip() for text in rule["annotations"].values())


def test_recording_rules_are_named_level_metric_operation_and_used() -> None:
    recorded = [rule["record"] for rule in rules("record")]
    used = " ".join(rule["expr"] for rule in rules("alert") + rules("record"))

    assert recorded
    for name in recorded:
        assert re.fullmatch(r"stockcast:[a-z0-9_]+:[a-z0-9_]+", name), name
        assert re.search(rf"{re.escape(name)}\b", used), f"{name} is recorded but unused"


def test_no_rule_hides_a_missing_metric_behind_a_constant() -> None:
    # Zero defaults come from a series every worker exposes (convention 2), never from
    # vector(0): that would also answer when the worker is not scraped at all.
    for rule in rules("alert") + rules("record"):
        assert "vector(" not in rule["expr"], rule


def unit_test_cases() -> list[tuple[str, bool]]:
    """(alertname, fires) for every alert_rule_test of every unit test file."""
    return [
        (case["alertname"], bool(case.get("exp_alerts")))
        for path in UNIT_TESTS
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_each_alert_has_a_unit_test_that_fires_it_and_one_that_stays_silent(name: str) -> None:
    cases = unit_test_cases()

    assert (name, True) in cases, f"no promtool test fires {name}"
    assert (name, False) in cases, f"no promtool test shows {name} silent"


def test_the_unit_tests_name_only_known_alerts() -> None:
    assert {name for name, _ in unit_test_cases()} <= set(ALERTS)


def test_there_are_rules_and_unit_tests() -> None:
    assert RULE_FILES
    assert UNIT_TESTS
