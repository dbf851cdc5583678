"""Vehicle lifecycle refusals."""

from ...core.errors import DomainError, NotFound


class InvalidVin(DomainError):
    code = "invalid_vin"
    template = "{vin!r} is not a valid VIN: {reason}."


class WmiNotYours(DomainError):
    code = "wmi_not_yours"
    template = ("VIN {vin} has manufacturer code {wmi}, which is assigned to {owner}; a manufacturer registers "
                "only VINs under its own codes (a regulator assigns them with vehicles.assign_wmi).")


class WmiTaken(DomainError):
    code = "wmi_taken"
    template = "Manufacturer code {wmi} is already assigned to {org!r}."


class NotAManufacturer(DomainError):
    code = "not_a_manufacturer"
    template = "Organisation {org!r} does not hold the manufacturer role; WMIs go to manufacturers."


class VehicleExists(DomainError):
    code = "vehicle_exists"
    template = "VIN {vin} was already registered at height {height}; a vehicle is born once."


class UnknownVehicle(DomainError):
    code = "unknown_vehicle"
    template = "No vehicle with VIN {vin} is registered."


class UnknownVehicleReport(NotFound):
    """A history report was asked for a VIN this ledger does not hold (a read, not a rule)."""

    code = "unknown_vin"
    template = "No vehicle with VIN {vin!r} is on this ledger (as of block {height})."


class VehicleScrapped(DomainError):
    code = "vehicle_scrapped"
    template = "VIN {vin} was deregistered (certificate {certificate}); only its history can be read now."


class VehicleStolen(DomainError):
    code = "vehicle_stolen"
    template = "VIN {vin} is reported stolen; it cannot change hands until the police record its recovery."


class InvalidHolder(DomainError):
    code = "invalid_holder"
    template = "{holder!r} is not a title holder: use a did:key (a person) or org:<id> (an organisation)."


class SameHolder(DomainError):
    code = "same_holder"
    template = "{holder} already holds the title of {vin}."


class BrandNotAllowed(DomainError):
    code = "brand_not_allowed"
    template = "A {role} key may not apply the {brand!r} brand; it may be applied by: {allowed}."


class BrandRule(DomainError):
    code = "brand_rule"
    template = "Brand {brand!r} cannot be applied to {vin}: {reason}."


class UnknownLien(DomainError):
    code = "unknown_lien"
    template = "VIN {vin} has no open lien {lien}."


class LienNotYours(DomainError):
    code = "lien_not_yours"
    template = "Lien {lien} on {vin} is held by {lender!r}; only that lender releases it."


class NotADeviceOfVehicle(DomainError):
    code = "not_vehicle_device"
    template = "{signer} is neither a device key of {vin} nor a key of an organisation allowed to record readings."


class InvalidReading(DomainError):
    code = "invalid_reading"
    template = "The reading is not valid: {reason}."


class InvalidField(DomainError):
    code = "invalid_field"
    template = "{field} {reason}."


class DeviceKeyRevoked(DomainError):
    code = "device_key_revoked"
    template = ("{signer} was a device key of {vin} until its retirement in block {height} ({reason}); nothing it "
                "signs counts after that. Sign with one of the vehicle's current device keys "
                "(`blokauto query vehicles devices vin={vin}`).")


class NotCurrentDeviceKey(DomainError):
    code = "not_current_device_key"
    template = "{key} is not a current device key of {vin}; its current keys: {current}."


class DeviceKeyInUse(DomainError):
    code = "device_key_in_use"
    template = "{key} is already a device key of {vin} or was retired from it; a new device key must be fresh."


class NotHolderOrMaker(DomainError):
    code = "not_holder_or_maker"
    template = "{signer} is neither the title holder of {vin} nor a key of its maker {maker!r}; only they revoke its device keys."


class TooManyDeviceKeys(DomainError):
    code = "too_many_device_keys"
    template = "{vin} already has {count} device keys (at most {limit}); revoke one first."
