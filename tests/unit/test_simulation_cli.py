"""``stockcast simulate`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sync_worker.cli import main
from sync_worker.domain.allocation import PolicyKind

KEYS = {"policy", "oversold_units", "lost_sales", "lost_pct", "stranded_units", "pushes_per_order"}


def simulate(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["simulate", "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def test_json_has_one_row_per_policy_with_the_figures() -> None:
    rows = simulate()

    assert [row["policy"] for row in rows] == [kind.value for kind in PolicyKind]
    assert all(set(row) >= KEYS for row in rows)
    assert all(row["oversold_units"] == 0 for row in rows)


def test_policies_can_be_chosen() -> None:
    rows = simulate("--policy", "static", "--policy", "adaptive")

    assert [row["policy"] for row in rows] == ["static", "adaptive"]


def test_the_table_names_every_policy() -> None:
    result = CliRunner().invoke(main, ["simulate"], catch_exceptions=False)

    assert result.exit_code == 0
    assert all(kind.value in result.output for kind in PolicyKind)


def test_saved_arrivals_replay_to_the_same_figures(tmp_path: Path) -> None:
    arrivals = tmp_path / "buyers.jsonl"
    played = simulate("--seed", "3", "--policy", "session_aware", "--save-arrivals", str(arrivals))
    default = (Path(__file__).parents[2] / "sync_worker/simulation/traces/burst.toml").read_text()
    generated_only = [line for line in default.splitlines() if not line.startswith("buyers =")]
    replay = tmp_path / "replay.toml"
    text = 'arrivals = "buyers.jsonl"\n' + "\n".join(generated_only)
    replay.write_text(text.split("[[bursts]]")[0])

    replayed = simulate("--trace", str(replay), "--policy", "session_aware")

    assert replayed == played
    assert len(arrivals.read_text().splitlines()) == played[0]["buyers"]


def test_the_seed_changes_the_buyers() -> None:
    assert simulate("--seed", "1", "--policy", "static") != simulate(
        "--seed", "2", "--policy", "static"
    )


def test_a_bad_trace_fails_with_every_problem(tmp_path: Path) -> None:
    trace = tmp_path / "bad.toml"
    trace.write_text("stock = 0\n")

    result = CliRunner().invoke(main, ["simulate", "--trace", str(trace)])

    assert result.exit_code == 1
    assert "3 problem(s)" in result.output
    assert "stock: must be greater than 0" in result.output
    assert "channels: at least one [[channels]] is needed" in result.output
