"""Vehicle history reports (``blokauto-report/1``): verification and the summary rules.

The public names of ``blokauto.verify`` for reports, kept as this module too; the rules are
documented (and implemented) in ``blokauto.verify._report``.
"""

from ._report import FORMAT, ReportProof, claim_view, open_recalls, summarize, verify_report, verify_report_evidence

__all__ = ["FORMAT", "ReportProof", "claim_view", "open_recalls", "summarize", "verify_report", "verify_report_evidence"]
