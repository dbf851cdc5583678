"""Resolving a campaign's affected vehicles from the derived installation index, at the height
the campaign opened: what each vehicle carried then (assemblies included, through the root
vehicle recorded for nested parts), narrowed by the vehicle criteria, with the title holder at
that height. One SQL statement over indexed tables."""

from __future__ import annotations

from typing import Any

from ...core.module import QueryView
from .spec import PartsOnBoard, VehicleFacts
from .state import Campaign


def _part_clause(c: Campaign) -> tuple[str, list[Any]]:
    terms: list[str] = []
    args: list[Any] = []
    if c.scope.part_numbers:
        terms.append(f"i.part_number IN ({','.join('?' * len(c.scope.part_numbers))})")
        args += c.scope.part_numbers
    for b in c.scope.batches:
        terms.append("(i.part_number = ? AND i.batch = ?)")
        args += [b.part_number, b.batch]
    for r in c.scope.serial_ranges:
        terms.append("(i.part_number = ? AND i.serial BETWEEN ? AND ?)")
        args += [r.part_number, r.first, r.last]
    return " OR ".join(terms), args


def _vehicle_clause(c: Campaign) -> tuple[str, list[Any]]:
    terms = ["b.height <= ?"]
    args: list[Any] = [c.opened]
    if c.scope.manufacturer:
        terms.append("b.manufacturer = ?")
        args.append(c.scope.manufacturer)
    if c.scope.build_dates is not None:
        terms.append("b.build_date BETWEEN ? AND ?")
        args += [c.scope.build_dates.first, c.scope.build_dates.last]
    if c.scope.vin_ranges:
        terms.append("(" + " OR ".join("b.vin BETWEEN ? AND ?" for _ in c.scope.vin_ranges) + ")")
        for r in c.scope.vin_ranges:
            args += [r.first, r.last]
    return " AND ".join(terms), args


def affected(view: QueryView, c: Campaign, *, limit: int = -1, offset: int = 0) -> list[tuple[str, str]]:
    """(vin, holder at the campaign's height) of every affected vehicle, in VIN order."""
    tables = {**view.need(PartsOnBoard).tables, **view.need(VehicleFacts).tables}
    vehicle_sql, vehicle_args = _vehicle_clause(c)
    if c.scope.has_part_criteria:
        part_sql, part_args = _part_clause(c)
        source = (f"SELECT DISTINCT i.vin FROM {{installations}} i WHERE i.installed <= ? "
                  f"AND (i.removed = 0 OR i.removed > ?) AND ({part_sql})")
        source_args: list[Any] = [c.opened, c.opened, *part_args]
    else:
        source, source_args = "SELECT vin FROM {births}", []
    sql = (f"WITH hit AS ({source}), "
           f"veh AS (SELECT b.vin FROM {{births}} b JOIN hit ON hit.vin = b.vin WHERE {vehicle_sql}), "
           f"own AS (SELECT h.vin, MAX(h.since) AS since FROM {{holders}} h JOIN veh ON veh.vin = h.vin "
           f"WHERE h.since <= ? GROUP BY h.vin) "
           f"SELECT own.vin, h.holder FROM own JOIN {{holders}} h ON h.vin = own.vin AND h.since = own.since "
           f"ORDER BY own.vin LIMIT ? OFFSET ?")
    return [(v, h) for v, h in view.sql(sql, [*source_args, *vehicle_args, c.opened, limit, offset],
                                        installations=tables["installations"], births=tables["births"],
                                        holders=tables["holders"])]


def affected_count(view: QueryView, c: Campaign) -> int:
    return len(affected(view, c))
