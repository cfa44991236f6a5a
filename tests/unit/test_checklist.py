"""The pre-live checklist on plain values: rows from positions and lineup items, the CSV and
JSON forms, and the warehouse count import (every bad row at once, all or nothing)."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from sync_worker.domain.checklist import (
    CSV_COLUMNS,
    ChecklistRow,
    CountProblem,
    InvalidCount,
    read_count,
    row_from_json,
    row_to_json,
    write_csv,
)
from sync_worker.domain.events import MAX_STOCK, StockCounted, Tier
from sync_worker.domain.live_session import LineupItem
from sync_worker.domain.position import IncomingBatch, SafetyReserve, WarehouseStock
from sync_worker.streaming import codecs
from tests.unit.conftest import MakePosition

T0 = 1_764_064_800_000  # 2025-11-25T10:00:00Z


def lipstick_item() -> LineupItem:
    return LineupItem(
        sku="lipstick",
        tier=Tier.TRAFFIC,
        name="Velvet lipstick",
        spec="ruby 01, 3.5 g",
        cap=120,
        margin_percent=32.5,
        replenish_quantity=500,
        replenish_eta_ms=T0 + 86_400_000,
    )


def count(text: str, known_skus: set[str] | None = None) -> tuple[StockCounted, ...]:
    return read_count(text.encode(), actor="cli:ana", at_ms=T0, known_skus=known_skus)


def problems_of(text: str, known_skus: set[str] | None = None) -> list[CountProblem]:
    with pytest.raises(InvalidCount) as raised:
        count(text, known_skus)
    return list(raised.value.problems)


# --- rows ---------------------------------------------------------------------------------


def test_a_row_puts_the_plan_beside_every_quantity_state(stocked: MakePosition) -> None:
    position = stocked(
        100,
        committed=20,
        reserve=SafetyReserve(units=5),
        unavailable=3,
        returns_pending=4,
        incoming=(
            IncomingBatch("b-2", "main", 30, T0 + 7_200_000),
            IncomingBatch("b-1", "main", 50, T0 + 3_600_000),
        ),
    )

    row = ChecklistRow.of("lipstick", lipstick_item(), position)

    assert row == ChecklistRow(
        sku="lipstick",
        name="Velvet lipstick",
        spec="ruby 01, 3.5 g",
        tier=Tier.TRAFFIC,
        warehouse="main",
        on_hand=100,
        in_transit=80,
        in_transit_eta_ms=T0 + 3_600_000,
        returns_pending=4,
        transferable=72,
        safety_reserve=5,
        sellable=72,
        planned_cap=120,
        margin_percent=32.5,
        replenish_eta_ms=T0 + 86_400_000,
        replenish_quantity=500,
    )


def test_a_sku_nobody_counted_has_no_quantities_rather_than_zeros(stocked: MakePosition) -> None:
    never_seen = ChecklistRow.of("lipstick", lipstick_item(), None)
    not_counted = ChecklistRow.of("lipstick", lipstick_item(), stocked(0, known=False))

    assert never_seen == not_counted
    assert never_seen.name == "Velvet lipstick"
    assert never_seen.warehouse == "main"
    assert (never_seen.on_hand, never_seen.sellable, never_seen.in_transit) == (None, None, None)


def test_a_sku_outside_the_lineup_has_stock_but_no_plan(stocked: MakePosition) -> None:
    row = ChecklistRow.of("lipstick", None, stocked(7))

    assert (row.on_hand, row.sellable, row.in_transit, row.in_transit_eta_ms) == (7, 7, 0, None)
    assert (row.name, row.tier, row.planned_cap, row.replenish_quantity) == ("", None, None, None)


def test_the_warehouse_is_where_the_on_hand_is_and_none_when_split(stocked: MakePosition) -> None:
    east_only = stocked(0, others=[("east", WarehouseStock(on_hand=9))])
    split = stocked(4, others=[("east", WarehouseStock(on_hand=9))])
    empty_east = stocked(0, warehouse="east")

    assert ChecklistRow.of("lipstick", None, east_only).warehouse == "east"
    assert ChecklistRow.of("lipstick", None, split).warehouse is None
    assert ChecklistRow.of("lipstick", None, empty_east).warehouse == "east"


# --- CSV and JSON -------------------------------------------------------------------------


def test_json_carries_instants_in_ms_and_round_trips(stocked: MakePosition) -> None:
    incoming = (IncomingBatch("b-1", "main", 50, T0),)
    rows = [
        ChecklistRow.of("lipstick", lipstick_item(), stocked(10, incoming=incoming)),
        ChecklistRow.of("mascara", None, None),
    ]

    wire = orjson.loads(orjson.dumps([row_to_json(row) for row in rows]))

    assert wire[0]["in_transit_eta_ms"] == T0
    assert wire[0]["tier"] == "traffic"
    assert wire[1]["on_hand"] is None
    assert [row_from_json(data) for data in wire] == rows


def test_json_from_a_newer_worker_with_more_keys_still_reads() -> None:
    data = row_to_json(ChecklistRow("lipstick", on_hand=3)) | {"next_year_column": 1}

    assert row_from_json(data) == ChecklistRow("lipstick", on_hand=3)


def test_csv_has_one_header_and_iso_utc_instants_and_empty_unknowns(
    stocked: MakePosition,
) -> None:
    incoming = (IncomingBatch("b-1", "main", 50, T0),)
    rows = [
        ChecklistRow.of("lipstick", lipstick_item(), stocked(10, incoming=incoming)),
        ChecklistRow.of("mascara", None, None),
    ]

    header, lipstick, mascara = csv.reader(io.StringIO(write_csv(rows)))

    assert tuple(header) == CSV_COLUMNS
    cells = dict(zip(header, lipstick, strict=True))
    assert cells["in_transit_eta"] == "2025-11-25T10:00:00Z"
    assert cells["replenish_eta"] == "2025-11-26T10:00:00Z"
    assert (cells["tier"], cells["margin_percent"], cells["on_hand"]) == ("traffic", "32.5", "10")
    empty = dict(zip(header, mascara, strict=True))
    assert empty["on_hand"] == empty["name"] == empty["in_transit_eta"] == ""
    assert empty["warehouse"] == "main"


def test_the_exported_checklist_filled_in_comes_back_as_counts(stocked: MakePosition) -> None:
    rows = [
        ChecklistRow.of("lipstick", lipstick_item(), stocked(10)),
        ChecklistRow.of("mascara", None, stocked(5, warehouse="east", sku="mascara")),
        ChecklistRow.of("blush", None, None),
    ]
    sheet = list(csv.DictReader(io.StringIO(write_csv(rows))))
    sheet[0]["on_hand"], sheet[2]["on_hand"] = "12", "40"  # the warehouse counted
    sheet[0]["sellable"] = "whatever"  # computed columns are not read
    filled = io.StringIO()
    writer = csv.DictWriter(filled, CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(sheet)

    counts = count(filled.getvalue())

    assert [(c.sku, c.warehouse, c.quantity) for c in counts] == [
        ("lipstick", "main", 12),
        ("mascara", "east", 5),
        ("blush", "main", 40),
    ]


def test_a_checklist_row_whose_stock_is_split_is_refused_not_put_in_one_warehouse(
    stocked: MakePosition,
) -> None:
    split = stocked(4, others=[("east", WarehouseStock(on_hand=9))])
    sheet = write_csv([ChecklistRow.of("lipstick", None, split)])

    (problem,) = problems_of(sheet)

    assert (problem.line, problem.sku) == (2, "lipstick")
    assert "several warehouses" in problem.reason


# --- importing a count --------------------------------------------------------------------


def test_a_count_file_without_a_warehouse_column_counts_into_main() -> None:
    counts = count("sku,on_hand\nlipstick,12\nmascara,0\n")

    assert [(c.sku, c.warehouse, c.quantity, c.actor, c.event_time_ms) for c in counts] == [
        ("lipstick", "main", 12, "cli:ana", T0),
        ("mascara", "main", 0, "cli:ana", T0),
    ]


def test_columns_in_any_order_and_case_a_bom_and_blank_lines_are_fine() -> None:
    text = "\ufeffOn_Hand, Warehouse ,SKU\r\n\r\n 7 , east , lipstick \r\n,,\r\n8,main,lipstick\r\n"

    counts = count(text)

    assert [(c.sku, c.warehouse, c.quantity) for c in counts] == [
        ("lipstick", "east", 7),
        ("lipstick", "main", 8),
    ]


def test_every_bad_row_is_listed_at_once_with_its_line_and_reason() -> None:
    text = (
        "sku,warehouse,on_hand\n"  # 1
        "lipstick,main,12\n"  # 2: good, but applied only with the rest
        ",main,3\n"  # 3: missing sku
        "mascara,main,twelve\n"  # 4
        "blush,main,-2\n"  # 5
        "lipstick,main,9\n"  # 6: second count of lipstick in main
        "lipstick,east,9\n"  # 7: good, another warehouse
        "toner,main,1000000001\n"  # 8
        "serum,main,\n"  # 9
        "gloss,,4\n"  # 10
        "comb,main,1,extra\n"  # 11
        "\n"  # 12: blank, skipped
        '"primer\nXL",main,1.5\n'  # 13-14: a quoted cell over two lines
    )

    problems = problems_of(text)

    assert [(p.line, p.sku, p.reason) for p in problems] == [
        (3, "", "missing sku"),
        (4, "mascara", "on_hand 'twelve' is not a whole number"),
        (5, "blush", "on_hand -2 is negative"),
        (6, "lipstick", "counted twice for warehouse 'main' (also line 2)"),
        (8, "toner", "on_hand 1000000001 is more than 1,000,000,000: a typo?"),
        (9, "serum", "missing on_hand"),
        (10, "gloss", "missing warehouse (leave the column out to count into main)"),
        (11, "comb", "4 cells, but the header has 3 columns"),
        (13, "primer\nXL", "on_hand '1.5' is not a whole number"),
    ]


def test_one_row_with_two_problems_lists_both() -> None:
    problems = problems_of("sku,on_hand\n,-1\n")

    assert [(p.line, p.reason) for p in problems] == [
        (2, "missing sku"),
        (2, "on_hand -1 is negative"),
    ]


def test_one_bad_row_among_good_ones_yields_no_count_at_all() -> None:
    good = "".join(f"sku-{n},{n}\n" for n in range(50))

    problems = problems_of(f"sku,on_hand\n{good}sku-x,oops\n")

    assert [p.line for p in problems] == [52]


def test_skus_outside_the_known_set_are_refused_when_one_is_given() -> None:
    text = "sku,on_hand\nlipstick,1\nlipstik,2\n"

    (problem,) = problems_of(text, known_skus={"lipstick", "mascara"})

    assert (problem.line, problem.reason) == (3, "unknown SKU 'lipstik'")
    assert len(count(text)) == 2  # without a known set, any SKU may be counted


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"", None, "empty file: no header, no rows"),
        (b"\n \n,,\n", None, "empty file: no header, no rows"),
        (b"sku,on_hand\n", None, "no rows to import, only the header"),
        (b"sku,qty\nlipstick,1\n", 1, "unknown column set sku,qty"),
        (b"sku,on_hand,note\nlipstick,1,x\n", 1, "unknown column set sku,on_hand,note"),
        (b"sku,on_hand,SKU\nlipstick,1,x\n", 1, "columns named twice: sku"),
        (b"sku,on_hand\n\xff\xfe,1\n", None, "not UTF-8 text (byte 12)"),
    ],
    ids=["empty", "blank", "header-only", "unknown", "extra", "twice", "not-utf8"],
)
def test_a_file_that_is_not_a_count_is_refused_as_a_whole(
    content: bytes, line: int | None, reason: str
) -> None:
    with pytest.raises(InvalidCount) as raised:
        read_count(content, actor="cli:ana", at_ms=T0)

    (problem,) = raised.value.problems
    assert problem.line == line
    assert problem.reason.startswith(reason)


def test_absurd_and_enormous_numbers_are_refused_and_the_limit_itself_is_not() -> None:
    digits = "9" * 5000  # beyond what int() parses from text

    problems = problems_of(f"sku,on_hand\na,{MAX_STOCK + 1}\nb,{digits}\nc,-{digits}\n")
    (limit,) = count(f"sku,on_hand\na,{MAX_STOCK}\n")

    assert [p.sku for p in problems] == ["a", "b", "c"]
    assert "typo" in problems[1].reason
    assert "negative" in problems[2].reason
    assert limit.quantity == MAX_STOCK


def test_the_same_file_gives_the_same_event_ids_whenever_it_is_imported() -> None:
    text = "sku,warehouse,on_hand\nlipstick,main,12\nlipstick,east,12\n"

    first = read_count(text.encode(), actor="cli:ana", at_ms=T0)
    again = read_count(text.encode(), actor="cli:bob", at_ms=T0 + 60_000)
    changed = read_count(text.replace("12\n", "13\n", 1).encode(), actor="cli:ana", at_ms=T0)

    ids = [event.event_id for event in first]
    assert ids == [event.event_id for event in again]
    assert len(set(ids)) == 2
    assert not set(ids) & {event.event_id for event in changed}


def test_every_imported_count_passes_the_workers_edge_validation() -> None:
    longest = "s" * 200
    decoder = codecs.SkuEventDecoder()
    text = f"sku,warehouse,on_hand\n{longest},{'w' * 200},{MAX_STOCK}\nlipstick,main,0\n"

    counts = count(text)

    for event in counts:
        assert decoder.decode(event.sku.encode(), codecs.encode(event)) == event
    too_long = problems_of(f"sku,warehouse,on_hand\n{longest}s,{'w' * 201},1\n")
    assert [p.reason for p in too_long] == [
        "sku longer than 200 characters",
        "warehouse longer than 200 characters",
    ]
