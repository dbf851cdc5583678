"""How a node's process logs: as today's text (the default), or one JSON object per line.

``--log-format json`` (``node start``, ``demo``, ``network up``) calls ``configure("json")``
once, before the node starts: every record of the standard library's loggers (``blokauto.*``,
``uvicorn.*``, ``nats``, warnings) then leaves through one handler on stderr, rendered by
structlog's ``ProcessorFormatter`` as one JSON object per line with at least

    timestamp   ISO 8601, UTC ("2026-07-01T12:00:00.123456Z")
    level       debug, info, warning, error, critical
    logger      the logger's name (blokauto.node, blokauto.access, uvicorn.error, ...)
    event       the message

and the record's extra fields (an access line's ``method``, ``route``, ``status``...; see
docs/operations.md). A record with an exception carries it as ``exception`` (the traceback as
text): a line never breaks. Text mode configures nothing, so a node prints what it always did.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

FORMATS = ("text", "json")
ACCESS_LOGGER = "blokauto.access"
#: HTTP clients the process uses (the SDK, a node asking its peers): their info lines name whole URLs,
#: query strings included (a share link's token), so only their warnings are logged.
QUIET = ("httpx", "httpcore")

_json = False


def check(log_format: str) -> str:
    """``log_format`` if it is one of ``FORMATS`` (a ValueError naming them otherwise)."""
    if log_format not in FORMATS:
        raise ValueError(f"--log-format is one of {', '.join(FORMATS)}, not {log_format!r}")
    return log_format


def configure(log_format: str, *, stream: TextIO | None = None, level: int = logging.INFO) -> bool:
    """Set up the process's logging for ``log_format`` ("text": nothing changes); True if JSON."""
    global _json
    if check(log_format) == "text":
        return False
    import structlog

    before = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
              structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*before, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.format_exc_info,
                    _fields_in_order, structlog.processors.JSONRenderer(default=str, ensure_ascii=False)]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # no handlers of their own: through the root's
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)
    structlog.configure(processors=[structlog.stdlib.filter_by_level, *before,
                                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=True)
    _json = True
    return True


def _fields_in_order(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """timestamp, level, logger and event first (what a person reading the lines looks for), then the rest."""
    return {k: event.pop(k) for k in ("timestamp", "level", "logger", "event") if k in event} | event


def json_logs() -> bool:
    """Whether this process logs JSON (``configure("json")`` ran)."""
    return _json


def uvicorn_log_config() -> Any:
    """uvicorn's ``log_config``: its own (today's text) unless the process logs JSON, whose
    handler then takes uvicorn's records too (None: uvicorn configures nothing)."""
    if _json:
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
