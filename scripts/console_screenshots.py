"""Screenshots of the console's pages for docs/console/ (run by scripts/console-screenshots).

The demo's chain in a temporary folder, a node on it (stopped by its PID), Debian's Chromium, and for
each page the key of a reader who may see it; each page is captured once every badge on it settled.
Names given as arguments (``scripts/console-screenshots passport supply-chain``) take only those pages.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "console"
sys.path.insert(0, str(ROOT / "tests"))
from helpers.console import open_console  # noqa: E402  (the tests' way of opening a page and waiting for it)
from blokauto.bench.harness import chromium  # noqa: E402  (Debian's Chromium, launched as the benches launch it)

VIN = "WZZ3E5C22NM400117"
#: file name -> (route, key name in the demo's keys/)
PAGES = {
    "explorer": ("#/explorer", "kba-admin"),
    "block": ("#/block/40", "kba-admin"),
    "vehicle": (f"#/vehicle/{VIN}", "ben"),
    "recalls": ("#/recall/1", "bavaria-motors-admin"),
    "parts": ("#/part/VP-83:VP83-0001", "bavaria-motors-admin"),
    "passport": ("#/passport/VP-83:VP83-0001", "bavaria-motors-admin"),
    "supply-chain": ("#/supply/supplier/voltcell", "voltcell-admin"),
    "consent": ("#/consent", "ben"),
    "organisation": ("#/organisation/bavaria-motors", "kba-admin"),
    "network": ("#/network", "kba-admin"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    unknown = [n for n in sys.argv[1:] if n not in PAGES]
    if unknown:
        sys.exit(f"no such page: {', '.join(unknown)} (the pages: {', '.join(PAGES)})")
    pages = {n: PAGES[n] for n in sys.argv[1:]} or PAGES
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo"
        print("running the demo (a minute or two)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "blokauto.cli", "demo", "--data", str(data)], check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        node = subprocess.Popen([sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/v1/status", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            with chromium() as browser:
                for name, (route, key) in pages.items():
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    open_console(page, url, route, data=data, name=key)
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(f"wrote docs/console/{name}.png", file=sys.stderr)
                    page.close()
        finally:
            os.kill(node.pid, signal.SIGTERM)
            node.wait(30)


if __name__ == "__main__":
    main()
