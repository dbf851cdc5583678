"""Parts provenance refusals."""

from ...core.errors import DomainError


class PartNumberTaken(DomainError):
    code = "part_number_taken"
    template = "Part number {part_number!r} is already registered by {supplier!r}."


class UnknownPartType(DomainError):
    code = "unknown_part_type"
    template = "Part number {part_number!r} is not registered; its supplier registers it with parts.register_type."


class NotTheSupplier(DomainError):
    code = "not_the_supplier"
    template = "Part number {part_number!r} belongs to {supplier!r}; only that organisation mints its parts."


class PartExists(DomainError):
    code = "part_exists"
    template = "{part} was already minted; a serial is minted once."


class IdTaken(DomainError):
    code = "id_taken"
    template = ("{ref} already names a {other}; a batch and a serialized part share the id space "
                "<part number>:<serial or batch>, so choose another {what}.")


class NotYourVehicle(DomainError):
    code = "not_your_vehicle"
    template = ("{org!r} fits parts at build to the vehicles it made; {vin} was made by {maker!r}. "
                "A workshop fits parts at service.")


class NotDeregistered(DomainError):
    code = "vehicle_not_deregistered"
    template = ("A recycler harvests parts from deregistered vehicles; {vin} is still registered. "
                "A workshop removes parts at service, or deregister the vehicle first.")


class SuspectedCounterfeit(DomainError):
    code = "suspected_counterfeit"
    template = ("{part} was never minted by its supplier: refused and recorded as a suspected counterfeit "
                "(installed into {target!r} by {by}).")


class UnknownBatch(DomainError):
    code = "unknown_batch"
    template = "Batch {batch!r} of part number {part_number!r} was never minted."


class BatchExists(DomainError):
    code = "batch_exists"
    template = "Batch {batch!r} of part number {part_number!r} already exists."


class WrongKind(DomainError):
    code = "wrong_part_kind"
    template = "{part_number!r} is {kind}; {reason}."


class NotCustodian(DomainError):
    code = "not_custodian"
    template = "{item} is in the custody of {custodian}; only its custodian can {action} it."


class NotInTransit(DomainError):
    code = "not_in_transit"
    template = "{item} is not in transit to {receiver}; it is {status}."


class InstalledElsewhere(DomainError):
    code = "installed_elsewhere"
    template = "{part} is already installed in {location}; remove it there first (recorded as a suspected error)."


class NotInstalled(DomainError):
    code = "not_installed"
    template = "{item} is not installed in {target}."


class RecalledPart(DomainError):
    code = "recalled_part"
    template = "{item} is covered by open recall {campaign} ({number}) and not remedied; it cannot be installed."


class NotEnoughUnits(DomainError):
    code = "not_enough_units"
    template = "Batch {batch!r} has {available} unit(s) in stock, not {wanted}."


class UnknownLot(DomainError):
    code = "unknown_lot"
    template = "Material lot {lot!r} is not registered."


class LotExists(DomainError):
    code = "lot_exists"
    template = "Material lot {lot!r} is already registered."


class MaterialOverconsumed(DomainError):
    code = "material_overconsumed"
    template = ("Lot {lot!r} holds {remaining} g of {material} not yet consumed; {wanted} g cannot come from it "
                "(nothing draws more from a lot than it holds).")


class NotALogger(DomainError):
    code = "not_a_logger"
    template = "{signer} is not a condition logger registered by the custodian of {part}."


class AssemblyRule(DomainError):
    code = "assembly_rule"
    template = "{reason}."


class UnknownPart(DomainError):
    code = "unknown_part"
    template = "{part} was never minted."


class LotNotConformant(DomainError):
    code = "lot_not_conformant"
    template = ("Lot {lot!r} cannot be {use}: {reason} (rule: {rule}; auditor: {auditor}). An auditor attests the "
                "lot with parts.attest_lot.")


class MassBalance(DomainError):
    code = "mass_balance"
    template = "{what}: {reason}. Inputs must cover outputs within the declared yield."


class LotInTransit(DomainError):
    code = "lot_in_transit"
    template = "Lot {lot!r} is in transit to {to}; its receiver takes custody first."


class WrongMaterial(DomainError):
    code = "wrong_material"
    template = "{reason}."


class TooManyOrigins(DomainError):
    code = "too_many_origins"
    template = ("{what} would carry {count} {kind}; at most {limit} are kept. Merge fewer lots into one.")


class BadHandoffTime(DomainError):
    code = "bad_handoff_time"
    template = ("{item}: the handoff time {at} is {reason}; give the time it happened (ms), at most {backdate_ms} ms "
                "before the block and not before its previous handoff at {since}, or 0 for the block's time.")


class NotRecoverable(DomainError):
    code = "not_recoverable"
    template = ("{part} is {status} in the custody of {custodian}; a recycler recovers material from parts in its "
                "custody that it harvested or received (not installed, not in transit, not scrapped).")


class NotABatteryPack(DomainError):
    code = "not_a_battery_pack"
    template = "{part} is a {category!r} part; a passport is issued for a battery pack (part type category 'battery')."


class NotTheMaker(DomainError):
    code = "not_the_maker"
    template = "{part} was made by {maker!r}; only its maker issues its passport."
