"""The pre-live checklist: per SKU, what the live team checks before going live, and the
warehouse count that comes back.

Formats. JSON carries instants as epoch milliseconds (``in_transit_eta_ms``,
``replenish_eta_ms``); CSV, read by people in a spreadsheet, as ISO-8601 UTC to the
second (``in_transit_eta``, ``replenish_eta``, e.g. ``2026-11-25T10:00:00Z``). An empty
cell (JSON ``null``) is a value nobody knows: a SKU with no stock event yet (or owned by
another worker) has no quantities, a SKU outside the lineup no plan.

Import. A warehouse count is a CSV with the columns ``sku,on_hand`` and optionally
``warehouse`` (``main`` when the column is left out), or the exported checklist itself
with ``on_hand`` filled in: its computed columns are ignored. The checklist's
``on_hand`` is the SKU's total, so its ``warehouse`` column names the one warehouse
holding it; for a SKU split across warehouses that cell is empty and the import refuses
the row rather than put the total into one warehouse. A file is applied whole or not
at all, and its event ids come from its bytes: importing the same file again changes
nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from sync_worker.domain.events import MAX_STOCK, StockCounted, Tier
from sync_worker.domain.live_session import LineupItem
from sync_worker.domain.position import SkuPosition

DEFAULT_WAREHOUSE = "main"
_MAX_ID = 200  # the events' limit on SKU and warehouse names


@dataclass(frozen=True, slots=True)
class ChecklistRow:
    """One SKU before the session: its plan (from the lineup) beside its stock."""

    sku: str
    name: str = ""
    spec: str = ""
    tier: Tier | None = None
    warehouse: str | None = DEFAULT_WAREHOUSE
    """Where ``on_hand`` is, so that a count of it goes back there; ``None`` when several
    warehouses hold the SKU."""
    on_hand: int | None = None
    in_transit: int | None = None
    in_transit_eta_ms: int | None = None
    """The earliest incoming batch's ETA."""
    returns_pending: int | None = None
    transferable: int | None = None
    safety_reserve: int | None = None
    sellable: int | None = None
    planned_cap: int | None = None
    margin_percent: float | None = None
    replenish_eta_ms: int | None = None
    replenish_quantity: int | None = None

    @classmethod
    def of(cls, sku: str, item: LineupItem | None, position: SkuPosition | None) -> ChecklistRow:
        """The row of ``sku``; a position that is not ``known`` counts as no position."""
        row = cls(sku)
        if item is not None:
            row = replace(
                row,
                name=item.name,
                spec=item.spec,
                tier=item.tier,
                planned_cap=item.cap,
                margin_percent=item.margin_percent,
                replenish_eta_ms=item.replenish_eta_ms,
                replenish_quantity=item.replenish_quantity,
            )
        if position is None or not position.known:
            return row
        return replace(
            row,
            warehouse=_counted_in(position),
            on_hand=position.on_hand,
            in_transit=position.incoming_units,
            in_transit_eta_ms=min((batch.eta_ms for batch in position.incoming), default=None),
            returns_pending=position.returns_pending,
            transferable=position.transferable,
            safety_reserve=position.safety_reserve,
            sellable=position.sellable,
        )


CSV_COLUMNS = tuple(field.name.removesuffix("_ms") for field in fields(ChecklistRow))


def _counted_in(position: SkuPosition) -> str | None:
    holding = [name for name, stock in position.warehouses if stock.on_hand]
    if len(holding) > 1:
        return None
    if holding:
        return holding[0]
    return position.warehouses[0][0] if position.warehouses else DEFAULT_WAREHOUSE


def row_to_json(row: ChecklistRow) -> dict[str, Any]:
    return {**asdict(row), "tier": None if row.tier is None else row.tier.value}


def row_from_json(data: Mapping[str, Any]) -> ChecklistRow:
    """The row ``row_to_json`` wrote; keys this version does not know are ignored."""
    known = {field.name: data[field.name] for field in fields(ChecklistRow) if field.name in data}
    tier = known.get("tier")
    return ChecklistRow(**{**known, "tier": None if tier is None else Tier(tier)})


def write_csv(rows: Iterable[ChecklistRow]) -> str:
    """The checklist as CSV text (RFC 4180 line ends), header first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(_cell(field.name, getattr(row, field.name)) for field in fields(row))
    return out.getvalue()


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if name.endswith("_eta_ms") and isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- importing a warehouse count ----------------------------------------------------------

COUNT_COLUMNS = ("sku", "warehouse", "on_hand")
_REQUIRED = frozenset({"sku", "on_hand"})


@dataclass(frozen=True, slots=True)
class CountProblem:
    line: int | None
    """1-based line of the file; ``None`` for the file as a whole."""
    sku: str
    reason: str


class InvalidCount(ValueError):
    """The file cannot be applied; ``problems`` lists every reason, row by row."""

    def __init__(self, problems: Sequence[CountProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the count file")


def read_count(
    content: bytes, *, actor: str, at_ms: int, known_skus: Collection[str] | None = None
) -> tuple[StockCounted, ...]:
    """A count event per row of the CSV ``content``, or ``InvalidCount`` listing every bad
    row: never some of the rows. With ``known_skus``, any other SKU is a bad row."""
    try:
        text = content.decode("utf-8-sig")  # spreadsheets save "CSV UTF-8" with a BOM
    except UnicodeDecodeError as error:
        raise InvalidCount([_whole(f"not UTF-8 text (byte {error.start})")]) from None
    records = _records(text)
    if not records:
        raise InvalidCount([_whole("empty file: no header, no rows")])
    (header_line, header), *rows = records
    columns = [name.strip().lower() for name in header]
    problem = _columns_problem(columns)
    if problem is not None:
        raise InvalidCount([CountProblem(header_line, "", problem)])
    if not rows:
        raise InvalidCount([_whole("no rows to import, only the header")])
    checklist = set(columns) == set(CSV_COLUMNS)
    digest = hashlib.sha256(content).hexdigest()
    first_line: dict[tuple[str, str], int] = {}
    problems: list[CountProblem] = []
    counts: list[StockCounted] = []
    for line, cells in rows:
        if len(cells) > len(columns):
            reason = f"{len(cells)} cells, but the header has {len(columns)} columns"
            problems.append(CountProblem(line, cells[0].strip(), reason))
            continue
        values = {name: cell.strip() for name, cell in zip(columns, cells, strict=False)}
        sku = values.get("sku", "")
        warehouse = values.get("warehouse", "") if "warehouse" in columns else DEFAULT_WAREHOUSE
        reasons = _sku_problems(sku, known_skus) + _warehouse_problems(warehouse, checklist)
        quantity, quantity_problem = _quantity(values.get("on_hand", ""))
        reasons += [quantity_problem] if quantity_problem else []
        if sku and warehouse:
            first = first_line.setdefault((sku, warehouse), line)
            if first != line:
                reasons.append(f"counted twice for warehouse {warehouse!r} (also line {first})")
        problems += [CountProblem(line, sku, reason) for reason in reasons]
        if not reasons and quantity is not None:
            counts.append(
                StockCounted(
                    event_id=_count_id(digest, sku, warehouse),
                    sku=sku,
                    event_time_ms=at_ms,
                    actor=actor,
                    warehouse=warehouse,
                    quantity=quantity,
                )
            )
    if problems:
        raise InvalidCount(problems)
    return tuple(counts)


def _whole(reason: str) -> CountProblem:
    return CountProblem(None, "", reason)


def _records(text: str) -> list[tuple[int, list[str]]]:
    """Each non-blank record with the line it starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as error:
        raise InvalidCount(
            [CountProblem(reader.line_num, "", f"unreadable CSV: {error}")]
        ) from None
    return records


def _columns_problem(columns: list[str]) -> str | None:
    named_twice = sorted({name for name in columns if columns.count(name) > 1})
    if named_twice:
        return f"columns named twice: {', '.join(named_twice)}"
    found = set(columns)
    if found == set(CSV_COLUMNS) or _REQUIRED <= found <= set(COUNT_COLUMNS):
        return None
    return (
        f"unknown column set {','.join(columns)}: expected sku,on_hand with an optional "
        "warehouse, or the exported checklist's columns"
    )


def _sku_problems(sku: str, known_skus: Collection[str] | None) -> list[str]:
    if not sku:
        return ["missing sku"]
    if len(sku) > _MAX_ID:
        return [f"sku longer than {_MAX_ID} characters"]
    if known_skus is not None and sku not in known_skus:
        return [f"unknown SKU {sku!r}"]
    return []


def _warehouse_problems(warehouse: str, checklist: bool) -> list[str]:
    if not warehouse and checklist:
        return [
            "on_hand is a total over several warehouses: count each warehouse on its own "
            "row of a sku,warehouse,on_hand file"
        ]
    if not warehouse:
        return ["missing warehouse (leave the column out to count into main)"]
    if len(warehouse) > _MAX_ID:
        return [f"warehouse longer than {_MAX_ID} characters"]
    return []


def _quantity(text: str) -> tuple[int | None, str | None]:
    if not text:
        return None, "missing on_hand"
    whole = re.fullmatch(r"([+-]?)0*([0-9]+)", text)
    if whole is None:
        return None, f"on_hand {text!r} is not a whole number"
    sign, digits = whole.groups()
    if sign == "-" and digits != "0":
        return None, f"on_hand {text} is negative"
    # Measured before int(), which refuses strings of more than 4300 digits.
    if len(digits) > len(str(MAX_STOCK)) or int(digits) > MAX_STOCK:
        return None, f"on_hand {text} is more than {MAX_STOCK:,}: a typo?"
    return int(digits), None


def _count_id(file_digest: str, sku: str, warehouse: str) -> str:
    """The same file yields the same ids, so the ledger takes a second import as a
    redelivery; (SKU, warehouse) is unique within a valid file."""
    identity = f"{file_digest}\x00{sku}\x00{warehouse}"
    return f"count:{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
