"""Domain modules. ``default_registry()`` is the set every blokauto chain runs."""

from __future__ import annotations

from functools import lru_cache

from ..core.registry import Registry


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    from .consent import module as consent
    from .energy import module as energy
    from .governance import module as governance
    from .insurance import module as insurance
    from .parts import module as parts
    from .payments import module as payments
    from .privacy import module as privacy
    from .recalls import module as recalls
    from .software import module as software
    from .telemetry import module as telemetry
    from .vehicles import module as vehicles

    return Registry([governance, vehicles, parts, recalls, consent, privacy, payments, telemetry, insurance,
                     software, energy])
