"""The PDF of a report (reportlab): the same summary, warnings, odometer chart and timeline as
the page, and the identifiers needed to verify the JSON report it was made from."""

from __future__ import annotations

import io
import time
from typing import Any

from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from xml.sax.saxutils import escape

LABELS = {
    "odometer_rollback": "Odometer rollback suspected", "odometer_implausible_jump": "Odometer reading implausible for the time elapsed", "odometer_not_actual": "Odometer not actual",
    "odometer_exceeds_mechanical_limits": "Odometer exceeds mechanical limits", "salvage": "Salvage title",
    "total_loss": "Total loss", "junk": "Junk title", "flood": "Flood damage", "fire": "Fire damage",
    "hail": "Hail damage", "lemon": "Lemon / buy-back", "rebuilt": "Rebuilt", "stolen": "Reported stolen",
    "scrapped": "Deregistered (scrapped)", "lien": "Open lien", "open_recall": "Open recall, not remedied",
    "do_not_drive": "DO NOT DRIVE: open safety recall",
}


def _holder(h: str) -> str:
    return h if h.startswith("org:") else "private owner"


def describe_entry(e: dict[str, Any]) -> str:
    """One line for a timeline entry (the page's describe() says the same)."""
    d = e.get("data", {})
    flag = f" (! {d['flag'].replace('_', ' ')})" if d.get("flag") else ""
    kind = e["type"]
    if kind == "birth":
        return f"{d['make']} {d['model']}, built {d['build_date']} in {d['plant']}"
    if kind == "title_transfer":
        return f"{_holder(d['from'])} -> {_holder(d['to'])}" + (f" (owner #{d['owner_number']})" if d.get("owner") else "")
    if kind == "odometer":
        return f"{d['value']:,} {d['unit']}{flag}"
    if kind in ("service", "repair"):
        return f"{d['odometer']:,} {d['unit']}: {', '.join(d.get('items', []))}{flag}"
    if kind == "inspection":
        return d["result"] + (f": {', '.join(d['defects'])}" if d.get("defects") else "") + flag
    if kind == "accident":
        return f"{d['severity']}, {'/'.join(d.get('impact_areas', []))}" + (", airbags deployed" if d.get("airbags_deployed") else "")
    if kind == "brand":
        return d["brand"] + (f": {d['reason']}" if d.get("reason") else "")
    if kind == "deregistered":
        return f"certificate {d['certificate']}"
    if kind in ("parts_installed", "parts_removed"):
        return ", ".join(i["part"] or f"{i['qty']}x {i['batch']}" for i in d.get("items", []))
    if kind == "recall_remedied":
        return f"recall {d['number']} remedied ({d['method']})"
    if kind == "ecus_fitted":
        return "ECUs fitted: " + ", ".join(f"{x['ecu']} ({x['path'] or 'no image'})" for x in d.get("ecus", []))
    if kind == "software_installed":
        return "installed over the air: " + ", ".join(f"{x['ecu']} -> {x['path']} (release {x['release_counter']})"
                                                      for x in d.get("installed", []))
    if kind == "crash_reported":
        return ("the vehicle reported a crash" + (" (airbag deployed)" if d.get("airbag") else "")
                + (" (impact)" if d.get("impact") else "") + f", {d.get('km', 0):,} km")
    if kind.startswith("device_key_"):
        return f"a device key was {kind.removeprefix('device_key_')}" + (f" ({d['reason'].replace('_', ' ')})" if d.get("reason") else "")
    return ", ".join(f"{k}: {d[k]}" for k in sorted(d))


#: ISO 4217 digits of the minor unit, where they are not 2.
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "UGX": 0, "XAF": 0, "XOF": 0, "BHD": 3, "KWD": 3,
                "OMR": 3, "JOD": 3, "TND": 3}


def money(units: int, currency: str) -> str:
    """Minor units as money: 290000 EUR -> '2,900.00 EUR'."""
    d = MINOR_DIGITS.get(currency, 2)
    whole, part = divmod(units, 10**d)
    return (f"{whole:,}.{part:0{d}d}" if d else f"{whole:,}") + f" {currency}"


def describe_claim(c: dict[str, Any]) -> str:
    """One proven insurance claim of a report, in a line."""
    day = time.strftime("%Y-%m-%d", time.gmtime(c["incident"] / 1000))
    how = "opened by the vehicle's crash report" if c["source"] == "crash" else "filed by the holder"
    text = f"Claim {c['claim']} ({c['insurer']}, policy {c['policy']}): {day}, {how}, {c['status']}"
    if c["reason"]:
        text += f" ({c['reason'].replace('_', ' ')})"
    if c["payout"]:
        text += f", {'paid out' if c['status'] == 'paid' else 'to pay'} {money(c['payout'], c['currency'])}"
    if c["flags"]:
        text += " - flagged: " + ", ".join(f.replace("_", " ") for f in c["flags"])
    return text


def _when(e: dict[str, Any]) -> str:
    """A record's own date (an accident's) beside the day it was recorded, where they differ."""
    recorded, own = _day(e["time"]), (e.get("data") or {}).get("date")
    return f"{own} (recorded {recorded})" if own and own != recorded else recorded


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def _km(n: int | None) -> str:
    return "–" if n is None else f"{n:,} km"


def odometer_chart(series: list[dict[str, Any]], width: float = 170 * mm, height: float = 60 * mm) -> Drawing:
    d = Drawing(width, height)
    if not series:
        d.add(String(0, height / 2, "No odometer readings recorded.", fontSize=9))
        return d
    left, bottom, top, right = 45, 18, 6, 6
    t0, t1 = series[0]["time"], series[-1]["time"]
    kmax = max(1, max(p["km"] for p in series))

    def x(t: int) -> float:
        return left + ((width - left - right) / 2 if t1 == t0 else (t - t0) / (t1 - t0) * (width - left - right))

    def y(k: int) -> float:
        return bottom + k / kmax * (height - bottom - top)

    for i in range(5):
        k = kmax * i / 4
        d.add(Line(left, y(k), width - right, y(k), strokeColor=colors.HexColor("#e4e7ec"), strokeWidth=0.5))
        d.add(String(left - 4, y(k) - 3, f"{round(k):,}", fontSize=7, textAnchor="end", fillColor=colors.grey))
    d.add(String(left, 4, _day(t0), fontSize=7, fillColor=colors.grey))
    d.add(String(width - right, 4, _day(t1), fontSize=7, textAnchor="end", fillColor=colors.grey))
    points: list[float] = []
    for p in series:
        points += [x(p["time"]), y(p["km"])]
    d.add(PolyLine(points, strokeColor=colors.HexColor("#2e90fa"), strokeWidth=1.5))
    for p in series:
        flagged = bool(p["flag"])
        d.add(Circle(x(p["time"]), y(p["km"]), 3.5 if flagged else 2.2,
                     fillColor=colors.HexColor("#b42318" if flagged else "#2e90fa"), strokeColor=None))
    return d


def render_pdf(report: dict[str, Any]) -> bytes:
    s = report["summary"]
    v = s["vehicle"]
    styles = getSampleStyleSheet()
    warn = ParagraphStyle("warn", parent=styles["Normal"], textColor=colors.HexColor("#b42318"), fontName="Helvetica-Bold")
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8, leading=10, textColor=colors.grey)
    cell = ParagraphStyle("cell", parent=styles["Normal"], fontSize=8, leading=10)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=f"Vehicle history {report['vin']}", author="blokauto")
    flow: list[Any] = [
        Paragraph(escape(f"{v['make']} {v['model']} {v['model_year']}"), styles["Title"]),
        Paragraph(escape(f"VIN {report['vin']} · as of block {report['as_of']['height']}, "
                         f"{_day(report['as_of']['time'])} · {s['entries']} history entries"), styles["Normal"]),
        Spacer(1, 4 * mm),
    ]
    for code in s["warnings"]:
        flow.append(Paragraph(escape("Warning: " + LABELS.get(code, code)), warn))
    rows = [
        ["Status", s["status"] + (f" (certificate {s['certificate']})" if s["certificate"] else ""), "Owners", str(s["owners"])],
        ["Odometer", s["odometer"]["status"].replace("_", " "), "Last / highest", f"{_km(s['odometer']['last_km'])} / {_km(s['odometer']['max_km'])}"],
        ["Accidents", str(len(s["accidents"])), "Suspected rollbacks", str(len(s["odometer"]["suspected_rollbacks"]))],
        ["Services", str(s["services"]["count"]), "Inspections", str(s["inspections"]["count"])],
        ["Title brands", ", ".join(s["title_brands"]) or "none", "Usage", ", ".join(s["usage_types"])],
        ["Built", f"{v['build_date']}, {v['plant']}", "Powertrain", v["powertrain"] + (f", {v['battery_wh'] // 1000} kWh" if v.get("battery_wh") else "")],
    ]
    t = Table([[Paragraph(escape(str(c)), cell) for c in r] for r in rows], colWidths=[28 * mm, 57 * mm, 30 * mm, 57 * mm])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#e4e7ec")),
                           ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f4f7")),
                           ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#f2f4f7"))]))
    recalls = s.get("open_recalls", [])
    recall_flow: list[Any] = [Paragraph("Recalls", styles["Heading2"])]
    if not recalls:
        recall_flow.append(Paragraph("No open recall covers this vehicle.", styles["Normal"]))
    for r in recalls:
        recall_flow.append(Paragraph(escape(
            f"{r['number']}: {r['component']}. {r['summary']} Remedy: {r['remedy']} "
            + ("(remedied on this vehicle)" if r["remedied"] else "(NOT remedied)")), cell if r["remedied"] else warn))
    if s.get("software"):
        recall_flow.append(Paragraph("Software", styles["Heading2"]))
        for sw in s["software"]:
            recall_flow.append(Paragraph(escape(
                f"{sw['ecu']} ({sw['hardware_id'] or 'hardware not recorded'}): {sw['path'] or 'no image reported'}, "
                f"release counter {sw['release_counter']}" + (f", sha256 {sw['image'][:16]}..." if sw["image"] else "")
                + f", since {_day(sw['time'])}"), cell))
    if report.get("insurance_claims") is not None:  # the holder let the report show them
        recall_flow.append(Paragraph("Insurance claims", styles["Heading2"]))
        if not report["insurance_claims"]:
            recall_flow.append(Paragraph("No insurance claim was ever made on this vehicle.", styles["Normal"]))
        for c in report["insurance_claims"]:
            recall_flow.append(Paragraph(escape(describe_claim(c)), cell))
    flow += [Spacer(1, 4 * mm), Paragraph("Summary", styles["Heading2"]), t, *recall_flow,
             Paragraph("Odometer", styles["Heading2"]), odometer_chart(s["odometer"]["series"]),
             Paragraph("Timeline", styles["Heading2"])]
    timeline = [["#", "Date", "Event", "Recorded by", "Details", "Block"]]
    for e in report["timeline"]:
        details = describe_entry(e)[:300]
        timeline.append([str(e["seq"]), Paragraph(escape(_when(e)), cell), e["type"].replace("_", " "), e["org"] or "owner or device key",
                         Paragraph(escape(details), cell), str(e["height"])])
    tt = Table(timeline, colWidths=[8 * mm, 24 * mm, 24 * mm, 30 * mm, 74 * mm, 12 * mm], repeatRows=1)
    style = [("FONTSIZE", (0, 0), (-1, -1), 8), ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#e4e7ec")),
             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f4f7")), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    for i, e in enumerate(report["timeline"], start=1):
        if e.get("data", {}).get("flag"):
            style.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#fef3f2")))
    tt.setStyle(TableStyle(style))
    flow += [tt, Spacer(1, 6 * mm), Paragraph(escape(
        f"Evidence: chain {report['trust']['chain']!r}, genesis {report['trust']['genesis_hash']}, checkpoint at block "
        f"{report['as_of']['height']}. This PDF is a rendering; verify the JSON report it was made from with "
        f"`blokauto verify REPORT.json --trust genesis.json`, or open the self-verifying HTML page."), small)]
    doc.build(flow)
    return buf.getvalue()
