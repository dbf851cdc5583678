"""How every command reports a problem: one clear line on stderr and a stable exit code.

    0  success
    1  refused: the node or a rule refused the request, or a check found problems
    2  usage: a missing file, a bad value, a node that cannot be reached
    3  verification failed: what was served is not proven against the trust anchor
    4  the data folder is damaged, or the node's state differs from the consortium's: a
       ``node.faults.NodeFault`` (except ``BackupError``: 1); the node will not run until an
       operator acts
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from typing import Any, Callable

import httpx
import msgspec
import typer
from rich.markup import escape

from ..core.errors import BlokautoError
from ..logs import json_logs
from ..node.backup import BackupError
from ..node.faults import NodeFault
from ..store.damage import DamagedData
from ..verify import VerificationError
from .common import err_console


def os_error_sentence(exc: OSError) -> str:
    """An operating system's refusal as a sentence naming the path (never a raw ``[Errno N]``)."""
    if exc.strerror and exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    if exc.strerror:
        return f"the operating system refused: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    return str(exc)


def fail(message: str, code: int = 1) -> None:
    if json_logs():  # a command that logs JSON (--log-format json) says this as one JSON line too
        logging.getLogger("blokauto.cli").error(message, extra={"exit_code": code})
    else:
        err_console.print(f"[bold red]error[/]: {escape(message)}")
    raise typer.Exit(code)


def _has_request(exc: httpx.RequestError) -> bool:
    try:
        exc.request
    except RuntimeError:  # an error raised before a request was made (a URL httpx cannot use)
        return False
    return True


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn refusals and usage problems into one clear line and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BlokautoError as exc:
            fail(f"[{exc.code}] {exc.message}", 1)
        except VerificationError as exc:
            fail(f"verification failed: {exc}", 3)
        except BackupError as exc:  # a node fault that damages nothing: the backup or restore was refused
            fail(str(exc), 1)
        except (NodeFault, DamagedData) as exc:
            fail(str(exc), 4)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
                fail(f"SQLite failed: {exc}", 2)
            fail(f"SQLite cannot read the data folder's databases ({exc}): see "
                 f"docs/operations.md#when-the-node-finds-damaged-data", 4)
        except ConnectionError as exc:
            fail(str(exc), 2)
        except httpx.InvalidURL as exc:
            fail(f"not a URL a node can be reached at ({exc}); give one like http://127.0.0.1:8545", 2)
        except httpx.HTTPError as exc:  # the URL names nothing that answers, or not over HTTP
            where = f" at {exc.request.url}" if isinstance(exc, httpx.RequestError) and _has_request(exc) else ""
            fail(f"cannot reach a node{where}: {exc or type(exc).__name__}; check the URL and that the node runs", 2)
        except (FileNotFoundError, FileExistsError) as exc:
            fail(os_error_sentence(exc), 2)
        except (ValueError, msgspec.ValidationError) as exc:
            fail(str(exc), 2)
        except RecursionError:
            fail("the input is nested too deeply to be read", 2)
        except OSError as exc:  # a folder where a file was named, no permission, an address that is taken
            fail(os_error_sentence(exc), 2)

    return wrapper
