"""Governance's state-key prefixes, declared once: its state maps, the verifiers (Python and,
generated, the browser's) and the node read them here."""

ORG = "gov/org/"
MEMBER = "gov/member/"
PROPOSAL = "gov/proposal/"
ACTIVE_ORGS = "gov/active-orgs"
CONSENSUS = "gov/consensus"  # node keys and quorum: what checkpoints are judged by
NEXT_PROPOSAL = "gov/next-proposal"
ADMIN_COUNT = "gov/admin-count/"
