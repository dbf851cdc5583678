"""Refusals as the SDK raises them: the node's own class, rebuilt from its JSON answer."""

from __future__ import annotations

from typing import Any

from ..core.errors import BlokautoError, error_class


class ApiError(BlokautoError):
    """A refusal whose code this SDK version does not know; carries the node's own sentence."""

    def __init__(self, code: str, message: str, detail: dict[str, Any], status: int) -> None:
        self.code = code  # type: ignore[misc]
        self.http_status = status
        self._message = message
        self.detail = detail
        Exception.__init__(self, message)

    @property
    def message(self) -> str:
        return self._message


def remote_error(code: str, message: str, detail: dict[str, Any], status: int) -> BlokautoError:
    """The error a node answered with: its registered class with the node's detail as sent (and the
    node's sentence, should this version's template need detail it did not send), or ``ApiError``.
    ``http_status`` is the status the node answered with."""
    cls = error_class(code)
    if cls is None:
        return ApiError(code, message, detail, status)
    err = cls.recorded(detail, fallback=message)
    err.http_status = status  # type: ignore[attr-defined]
    return err
