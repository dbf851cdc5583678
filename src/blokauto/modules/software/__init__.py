"""Software: authentic over-the-air updates, Uptane's two repositories anchored on the ledger.

Decisions (each handler's docstring lists its rules):

- **TUF is python-tuf's.** A maker runs an image repository and a director, each with root,
  targets, snapshot and timestamp roles (``blokauto.ota.repository`` builds and signs them with
  python-tuf's Metadata API). The ledger reads their files with the same API (``metadata``) and
  never hand-checks a signature.
- **The ledger anchors them.** A maker registers each repository's root once, then rotates it
  (signed by the old and new root thresholds); each release of the image repository anchors its
  targets metadata: the file's hash and version, and every image (path, length, sha256, Uptane's
  hardware id and release counter, an optional bundle of images installed together). What the
  ledger anchors every vehicle and regulator sees: no targeted release, and freshness from a
  quorum-signed checkpoint (docs/software.md).
- **The vehicle verifies, then reports.** The updater (``blokauto.ota.updater``) does Uptane full
  verification against these anchors, installs every image of an update or none, and its primary
  ECU (a current device key of the vehicle) signs a version manifest: ``report_manifest`` checks it
  again (anchored image, hardware id, release counter, whole bundle) and writes the vehicle's
  software inventory and its history.
- **Recalls close on proof.** A recall whose remedy is software names the fix (hardware id and
  lowest release counter); the manifest that installs it remedies the vehicle in the same
  transaction (``SoftwareRemedies``, provided by recalls), never the maker's word.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import (InstalledImage, SoftwareDoor, SoftwareRecords, SoftwareRemedies, image_key, inventory_key,
                    release_key, repository_key)
from .metadata import MAX_METADATA_BYTES, sha256
from .spec import module
from .state import is_ident, is_target_path

module.provide(SoftwareDoor, SoftwareRecords())

__all__ = ["MAX_METADATA_BYTES", "InstalledImage", "SoftwareDoor", "SoftwareRemedies", "image_key", "inventory_key", "is_ident",
           "is_target_path", "module", "release_key", "repository_key", "sha256"]
