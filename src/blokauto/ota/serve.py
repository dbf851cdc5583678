"""Serving a maker's repositories over HTTP: static files, read-only, nothing outside the folder.

Any static web server or CDN serves a repository as well (the files are signed; the server is not
trusted). This one is for a laptop, the demo and the tests: ``blokauto software serve DIR``.
"""

from __future__ import annotations

import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


def servable(url_path: str) -> bool:
    """Only what a vehicle fetches: files under a ``metadata/`` or ``targets/`` folder (never role
    keys, dotfiles or anything else that happens to lie in the folder)."""
    parts = [p for p in unquote(urlsplit(url_path).path).split("/") if p]
    return (len(parts) >= 2 and any(p in ("metadata", "targets") for p in parts[:-1])
            and not any(p.startswith(".") or p in ("keys", "..") or p.endswith("-keys") for p in parts))


class _Quiet(SimpleHTTPRequestHandler):
    """GET and HEAD of repository files only (``servable``): no directory listings, no logging to stderr."""

    def send_head(self) -> Any:
        if not (servable(self.path) and self._plain_file()):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def _plain_file(self) -> bool:
        """The path names a regular file in the served folder, reached without a symlink."""
        try:
            local = os.path.abspath(self.translate_path(self.path))
            return (os.path.realpath(local) == local and local.startswith(self.directory.rstrip(os.sep) + os.sep)
                    and os.path.isfile(local))
        except ValueError:  # a NUL byte and the like in the path
            return False

    def list_directory(self, path: Any) -> None:  # type: ignore[override]
        self.send_error(404, "Not found")
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class RepositoryServer:
    """``directory`` over HTTP on ``host:port`` (port 0: any free port), in a background thread."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = functools.partial(_Quiet, directory=os.path.realpath(directory))
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="ota-repository", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "RepositoryServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
