"""Vehicle history reports, node side: assembly from a consistent snapshot, and rendering
(self-verifying HTML page, PDF). Verification lives in ``blokauto.verify.report``."""

from .assemble import build_report

__all__ = ["build_report"]
