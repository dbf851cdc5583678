"""The governance module's declaration: its parameters and derived index tables."""

from ...core.module import Module

module = Module(
    "governance",
    "Organisations, their member keys and roles, node keys and quorum, votes and chain parameters.",
)

VOTE_THRESHOLD = module.param(
    "vote_threshold_pct", 66, min=1, max=100,
    doc="Share of active organisations (percent) whose yes votes pass a proposal; 66 is two thirds, rounded up "
        "to whole organisations (2 of 3, 3 of 4, 4 of 5).",
)
PROPOSAL_TTL = module.param(
    "proposal_ttl_ms", 7 * 24 * 3_600_000, min=60_000, max=365 * 24 * 3_600_000,
    doc="How long a proposal stays open for votes.",
)

MEMBERS_BY_ORG = module.index(
    "members",
    columns=[("org", "TEXT"), ("did", "TEXT"), ("roles", "TEXT"), ("status", "TEXT"), ("since", "INTEGER")],
    key=["org", "did"],
)
PROPOSALS_BY_STATUS = module.index(
    "proposals",
    columns=[("id", "INTEGER"), ("status", "TEXT"), ("action", "TEXT"), ("opened", "INTEGER")],
    key=["id"],
    lookups=[["status", "id"]],
)
