"""VIN rules (ISO 3779) and WMI decoding with vininfo.

Validity rules are consensus rules and stay here, small and stable: 17 characters from the
ISO 3779 alphabet (no I, O, Q), and the check digit (position 9) for North American VINs
(first character 1-5), where it is mandatory. vininfo decodes the manufacturer and country for
people to read; that text is shown in queries and reports, never stored in state, so the ledger
does not depend on the library's data version.
"""

from __future__ import annotations

import re

from .errors import InvalidVin

_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_TRANSLIT = {**{str(d): d for d in range(10)},
             **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
             **dict(zip("STUVWXYZ", range(2, 10)))}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_WMI = re.compile(r"^[A-HJ-NPR-Z0-9]{3}$")


def check_digit(vin: str) -> str:
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin, _WEIGHTS))
    r = total % 11
    return "X" if r == 10 else str(r)


def needs_check_digit(vin: str) -> bool:
    """North American VINs (WMI starting 1-5) must carry a valid check digit."""
    return vin[0] in "12345"


def validate_vin(vin: str) -> str:
    """Return the VIN if it is valid, else raise ``InvalidVin`` saying why."""
    if len(vin) != 17:
        raise InvalidVin(vin=vin[:40], reason=f"a VIN has 17 characters, this one has {len(vin)}")
    if vin != vin.upper():
        raise InvalidVin(vin=vin, reason="VINs are written in capital letters")
    if not _VIN.match(vin):
        bad = sorted({c for c in vin if not re.match(r"[A-HJ-NPR-Z0-9]", c)})
        raise InvalidVin(vin=vin, reason=f"characters {''.join(bad)!r} are not allowed (ISO 3779 excludes I, O and Q)")
    if needs_check_digit(vin):
        expected = check_digit(vin)
        if vin[8] != expected:
            raise InvalidVin(vin=vin, reason=f"the check digit (9th character) should be {expected!r}, not {vin[8]!r}")
    return vin


def validate_wmi(wmi: str) -> str:
    if not _WMI.match(wmi):
        raise InvalidVin(vin=wmi, reason="a WMI is 3 characters from the VIN alphabet")
    return wmi


def decode(vin_or_wmi: str) -> dict[str, str]:
    """Manufacturer, country and region as vininfo knows them (for display only)."""
    from vininfo import Vin
    from vininfo.exceptions import ValidationError

    padded = vin_or_wmi if len(vin_or_wmi) == 17 else (vin_or_wmi + "00000000000000")[:17]
    try:
        v = Vin(padded)
        maker = v.manufacturer if v.manufacturer and v.manufacturer != "UnsupportedBrand" else ""
        return {"manufacturer": maker, "country": v.country or "", "region": v.region or ""}
    except (ValidationError, KeyError, ValueError):
        return {"manufacturer": "", "country": "", "region": ""}
