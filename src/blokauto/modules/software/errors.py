"""Software refusals, on the ledger and in the vehicle's updater alike (the same codes name the
same attack on both sides). Each leaves the repositories, releases and inventories as they were.

    DomainError
    ├── metadata   InvalidMetadata, MetadataTooLarge, MetadataExpired, MetadataRollback,
    │              ThresholdNotMet, RootNotAnchored, RepositoryExists, UnknownRepository
    ├── releases   InvalidRelease, ReleaseNotAnchored, ImageMismatch
    ├── vehicles   UnknownEcu, DuplicateEcu, TooManyEcus, WrongHardwareId, SoftwareRollback, PartialBundle,
    │              ManifestOutOfOrder, ManifestUnchanged, NotVehicleMaker
    └── updater    EndlessData, ImageHashMismatch, DownloadFailed   (the vehicle's side only)

A manifest signed by a key that is not a current device key of the vehicle is refused by the
vehicles rules (``not_vehicle_device``, ``device_key_revoked``); an anchor sent by a revoked member
key by the framework (``key_revoked``).
"""

from ...core.errors import DomainError, NotFound


class InvalidMetadata(DomainError):
    code = "invalid_metadata"
    template = "The {role} metadata is not valid TUF metadata: {reason}."


class MetadataTooLarge(DomainError):
    code = "metadata_too_large"
    template = ("The {role} metadata is {size} bytes, more than the {limit} allowed; split the release or "
                "serve fewer targets per file.")


class MetadataExpired(DomainError):
    code = "metadata_expired"
    template = ("The {role} metadata has expired ({reason}); the repository must sign fresh metadata (a frozen or "
                "replayed repository serves old files).")


class MetadataRollback(DomainError):
    code = "metadata_rollback"
    template = "The {role} metadata goes back ({reason}): metadata never returns to an older version."


class ThresholdNotMet(DomainError):
    code = "threshold_not_met"
    template = ("The {role} metadata is not signed by the threshold of keys its delegator names ({reason}); keys "
                "compromised below the threshold, or revoked, cannot sign for the role.")


class RootNotAnchored(DomainError):
    code = "root_not_anchored"
    template = ("The {kind} repository of {maker} serves root version {version} ({sha256}), not the root the "
                "ledger anchors (version {anchored}, {anchored_sha256}).")


class RepositoryExists(DomainError):
    code = "repository_exists"
    template = ("{maker} already registered its {kind} repository at block {height}; rotate its root "
                "(software.rotate_root) instead.")


class UnknownRepository(NotFound):
    code = "unknown_repository"
    template = "{maker} has registered no {kind} repository on the ledger (software.register_repository)."


class InvalidRelease(DomainError):
    code = "invalid_release"
    template = "The release cannot be anchored: {reason}."


class ReleaseNotAnchored(DomainError):
    code = "release_not_anchored"
    template = ("{what} is not in any release {maker} anchored on the ledger; a vehicle installs only software "
                "every vehicle and regulator can see.")


class ImageMismatch(DomainError):
    code = "image_mismatch"
    template = ("{what}: {reason} (mix-and-match: metadata from different releases or repositories must agree "
                "on every image).")


class UnknownEcu(DomainError):
    code = "unknown_ecu"
    template = "{vin} has no ECU {ecu!r} fitted on the ledger; its maker fits ECUs with software.fit_ecus."


class DuplicateEcu(DomainError):
    code = "duplicate_ecu"
    template = "ECU {ecu!r} appears more than once; name each ECU once."


class TooManyEcus(DomainError):
    code = "too_many_ecus"
    template = "{vin} would have {count} ECUs on the ledger; a vehicle has at most {limit}."


class WrongHardwareId(DomainError):
    code = "wrong_hardware_id"
    template = "Image {path!r} is for hardware {image_hardware!r}; ECU {ecu!r} is {ecu_hardware!r}."


class SoftwareRollback(DomainError):
    code = "software_rollback"
    template = ("Image {path!r} has release counter {counter}, lower than {current} that ECU {ecu!r} runs: "
                "software never goes back to a release it replaced.")


class PartialBundle(DomainError):
    code = "partial_bundle"
    template = ("Bundle {bundle!r} installs together: ECU {ecu!r} ({hardware_id}) must run {path!r} with the rest of "
                "the bundle; install every image of the bundle or none.")


class ManifestOutOfOrder(DomainError):
    code = "manifest_out_of_order"
    template = ("The manifest of {vin} is dated t={t}, not after its last manifest (t={last}) or more than {skew_ms} "
                "ms after the block time {time}; check the vehicle's clock.")


class ManifestUnchanged(DomainError):
    code = "manifest_unchanged"
    template = "Every ECU of {vin} the manifest names already runs that image; report a manifest after an install."


class NotVehicleMaker(DomainError):
    code = "not_vehicle_maker"
    template = "{vin} was made by {manufacturer!r}; only its maker fits its ECUs."


class EndlessData(DomainError):
    code = "endless_data"
    template = ("The server sent more than the {length} bytes {what} may have; the download was stopped "
                "(an endless-data attack, or a damaged file).")


class ImageHashMismatch(DomainError):
    code = "image_hash_mismatch"
    template = ("The image {path!r} downloaded does not match its length and hashes in the signed metadata "
                "(arbitrary software); nothing was installed.")


class DownloadFailed(DomainError):
    code = "download_failed"
    template = "Could not download {what} from {url}: {reason}. Nothing was installed; try again."
    retryable = True
