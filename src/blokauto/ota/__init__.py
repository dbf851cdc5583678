"""Over-the-air updates off the ledger: the maker's Uptane repositories (``repository``, built with
python-tuf), a static server for them (``serve``), and the vehicle's primary-ECU updater
(``updater``) that verifies them against the ledger's anchors."""

from .repository import Director, ImageRepository
from .serve import RepositoryServer
from .updater import Updater, UpdatePlan, UpdateResult

__all__ = ["Director", "ImageRepository", "RepositoryServer", "UpdatePlan", "UpdateResult", "Updater"]
