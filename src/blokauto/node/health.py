"""What a node knows to be damaged in its own data, and the scrubber that looks for it.

Damage is found three ways: by the checks a read makes before it answers (a block against its
header and attestations, a state value against its proof, an index row against its check hash),
by the cheap checks at start, and by the scrubber, which re-verifies everything in a low-priority
process now and then. Either way the node becomes unhealthy (``/v1/status`` names what and
where) and refuses, with ``integrity_failure``, every read of the damaged data: the blocks
concerned, or everything read from ``state.db``. It keeps serving what is intact.

The scrubber's last report is kept in ``DATA/integrity.json``; a node that starts with state
damage on record sets ``state.db`` aside and rebuilds it from the block log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..store.damage import DamagedData
from .faults import DataIntegrity
from .scrub import STATE_KINDS, ScrubReport

log = logging.getLogger("blokauto.health")

INTEGRITY_FILE = "integrity.json"


class Health:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / INTEGRITY_FILE
        self._lock = threading.Lock()
        self.damage: list[dict[str, Any]] = []
        self.damaged_heights: set[int] = set()
        self.state_damage: dict[str, Any] | None = None
        self.last_scrub: dict[str, Any] | None = None
        #: Called once when state.db is found damaged: what the node decides from it (replay, roles)
        #: can no longer be trusted, so the node wires this to stop ordering and executing.
        self.on_state_damage: Any = None

    @property
    def ok(self) -> bool:
        return not self.damage

    def note(self, damage: DamagedData) -> None:
        """Record damage found by a read (or at start); later reads of it are refused."""
        entry = {**damage.to_dict(), "scope": damage.scope, "height": damage.height}
        with self._lock:
            if entry in self.damage:
                return
            if len(self.damage) < 100:
                self.damage.append(entry)
            first = damage.scope == "state" and self.state_damage is None
            if damage.scope == "state":
                self.state_damage = self.state_damage or entry
            elif damage.height is not None:
                self.damaged_heights.add(damage.height)
        log.error("damaged data: %s", damage)
        self._save()
        if first:
            self._state_damaged(entry)

    def note_scrub(self, report: ScrubReport, seconds: float) -> None:
        first: dict[str, Any] | None = None
        with self._lock:
            self.last_scrub = {"ok": report.ok, "height": report.height, "state_height": report.state_height,
                               "findings": len(report.findings), "seconds": round(seconds, 1),
                               "finished_at_ms": time.time_ns() // 1_000_000}
            for f in report.findings:
                scope = "state" if f.kind in STATE_KINDS else "block"
                entry = {"what": "state.db" if scope == "state" else "the block log",
                         "where": f"height {f.height}" if f.height is not None else "the whole file",
                         "reason": f"[{f.kind}] {f.message}", "scope": scope, "height": f.height}
                if entry not in self.damage and len(self.damage) < 100:
                    self.damage.append(entry)
                if scope == "state" and self.state_damage is None:
                    self.state_damage = entry
                    first = entry
                elif f.height is not None and scope == "block":
                    self.damaged_heights.add(f.height)
        if report.findings:
            log.error("the scrubber found %d problem(s), first: %s", len(report.findings), report.findings[0])
        self._save()
        if first is not None:
            self._state_damaged(first)

    def _state_damaged(self, entry: dict[str, Any]) -> None:
        log.error("state.db is damaged (%s at %s: %s): this node orders and executes nothing more until it is "
                  "restarted, which rebuilds state.db from its block log", entry["what"], entry["where"], entry["reason"])
        if self.on_state_damage is not None:
            self.on_state_damage(entry)

    def check_block(self, height: int) -> None:
        if height in self.damaged_heights:
            raise DataIntegrity(what="the block log", where=f"block {height}",
                                reason=self._reason(lambda d: d.get("height") == height and d["scope"] == "block"))

    def check_state(self) -> None:
        d = self.state_damage
        if d is not None:
            raise DataIntegrity(what=d["what"], where=d["where"], reason=d["reason"])

    def _reason(self, match: Any) -> str:
        for d in self.damage:
            if match(d):
                return d["reason"]
        return "found damaged earlier"

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"damage": list(self.damage), "last_scrub": self.last_scrub}

    def _save(self) -> None:
        with self._lock:
            data = {"damage": self.damage, "last_scrub": self.last_scrub}
        tmp = self.path.with_name(INTEGRITY_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)

    @staticmethod
    def recorded_state_damage(data_dir: Path) -> dict[str, Any] | None:
        """State damage a previous run recorded (the next start rebuilds state.db)."""
        path = Path(data_dir) / INTEGRITY_FILE
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return next((d for d in data.get("damage", []) if d.get("scope") == "state"), None)

    @staticmethod
    def recorded_block_damage(data_dir: Path) -> list[int]:
        """Heights of damaged blocks a previous run recorded (checked again at the next start)."""
        path = Path(data_dir) / INTEGRITY_FILE
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        return sorted({d["height"] for d in data.get("damage", []) if d.get("scope") == "block"
                       and isinstance(d.get("height"), int)})

    @staticmethod
    def clear_recorded_state_damage(data_dir: Path) -> None:
        """state.db was set aside: the damage on record is in that file now, not in the one being rebuilt
        (an interrupted rebuild resumes at the next start instead of being set aside again)."""
        path = Path(data_dir) / INTEGRITY_FILE
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        data["damage"] = [d for d in data.get("damage", []) if d.get("scope") != "state"]
        tmp = path.with_name(INTEGRITY_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def forget_state_damage(self) -> None:
        """state.db was rebuilt: earlier state damage no longer applies."""
        with self._lock:
            self.damage = [d for d in self.damage if d["scope"] != "state"]
            self.state_damage = None
        self._save()


class Scrubber:
    """Runs the scrub process every ``interval_s`` (the first time ``first_after_s`` after start)."""

    def __init__(self, data_dir: Path, health: Health, *, interval_s: float, first_after_s: float = 30.0,
                 registry_factory: str = "blokauto.modules:default_registry") -> None:
        self.data_dir = Path(data_dir)
        self.health = health
        self.interval_s = interval_s
        self.first_after_s = first_after_s
        self.registry_factory = registry_factory
        self.runs = 0
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._loop, name="scrubber", daemon=True)

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._thread.is_alive():
            self._thread.join(15)

    def _loop(self) -> None:
        wait = self.first_after_s
        while not self._stop.wait(wait):
            self.run_once()
            wait = self.interval_s

    def run_once(self) -> ScrubReport | None:
        started = time.monotonic()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "blokauto.node.scrub", str(self.data_dir), "--registry", self.registry_factory],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        out, err = self._proc.communicate()
        if self._stop.is_set():
            return None
        try:
            report = ScrubReport.from_dict(json.loads(out))
        except (ValueError, KeyError, TypeError):
            log.error("the scrubber failed (exit %s): %s", self._proc.returncode, err.decode(errors="replace")[-2000:])
            return None
        self.runs += 1
        self.health.note_scrub(report, time.monotonic() - started)
        return report
