"""The state keys a verifier checks proofs for, built from the prefixes the modules declare (so
they are written once; the browser verifier gets them from ``web/state_keys.js``, generated from
``STATE_KEYS`` by ``python -m blokauto.docgen``)."""

from __future__ import annotations

from ..modules.governance import keys as governance
from ..modules.insurance import keys as insurance
from ..modules.parts import keys as parts
from ..modules.recalls import keys as recalls
from ..modules.software import keys as software
from ..modules.vehicles import keys as vehicles

#: Digits of a number in a state key (numbers are zero-padded so keys sort numerically).
NUMBER_DIGITS = 16

#: What the browser verifier needs, by the name it uses.
STATE_KEYS: dict[str, str | int] = {
    "vehicle": vehicles.VEHICLE,
    "openCampaigns": recalls.OPEN,
    "campaign": recalls.CAMPAIGN,
    "remedy": recalls.REMEDY,
    "bom": parts.BOM,
    "part": parts.PART,
    "batch": parts.BATCH,
    "lot": parts.LOT,
    "passport": parts.PASSPORT,
    "consensus": governance.CONSENSUS,
    "vehicleClaims": insurance.VEHICLE_CLAIMS,
    "claim": insurance.CLAIM,
    "software": software.VEHICLE,
    "numberDigits": NUMBER_DIGITS,
}

CONSENSUS_KEY = governance.CONSENSUS.encode()
OPEN_CAMPAIGNS_KEY = recalls.OPEN
PART_PREFIX = parts.PART


def _number(n: int) -> str:
    return f"{n:0{NUMBER_DIGITS}d}"


def vehicle_key(vin: str) -> str:
    return vehicles.VEHICLE + vin


def campaign_key(campaign: int) -> str:
    return recalls.CAMPAIGN + _number(campaign)


def remedy_key(campaign: int, vin: str) -> str:
    return f"{recalls.REMEDY}{_number(campaign)}/{vin}"


def bom_key(vin: str) -> str:
    return parts.BOM + vin


def part_key(part_id: str) -> str:
    return parts.PART + part_id


def vehicle_claims_key(vin: str, since: int) -> str:
    return f"{insurance.VEHICLE_CLAIMS}{vin}/{_number(since)}"


def claim_key(claim: int) -> str:
    return insurance.CLAIM + _number(claim)
