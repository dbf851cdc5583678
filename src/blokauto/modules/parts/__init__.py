"""Parts: catalogue, serialized twins and batches, custody, condition logs, raw materials,
assemblies, installation and removal."""

from . import handlers, queries  # noqa: F401  (they register on the module)
from .spec import module

__all__ = ["module"]
