"""The blokauto Python SDK: build and sign transactions, submit them, wait for receipts, read
state and query modules with proofs checked against the consortium's trust anchor, and follow
events.

    from blokauto.client import Client, KeyPair
    from blokauto.modules.governance.messages import AddMember

    with Client("http://127.0.0.1:8545", trust=Path("genesis.json"), key=admin) as bc:
        info = bc.send(AddMember(member=new.did, roles=["workshop"]), admin, new)
        print(info.ok, info.height)
        member = bc.state(f"gov/member/{new.did}")   # proof verified, or VerificationError

Every refusal raises the ``BlokautoError`` subclass the node answered with (same code, same
detail), so ``except RevokedKey:`` works across the network.
"""

from __future__ import annotations

from ..core.crypto import KeyPair
from ._client import DEFAULT_TTL_MS, Client, RequestSigner, new_nonce, now_ms, signed_http
from ._errors import ApiError
from ._events import Event
from ._results import StateValue, TxInfo

__all__ = ["Client", "KeyPair", "RequestSigner", "signed_http", "TxInfo", "StateValue", "Event", "ApiError", "new_nonce", "DEFAULT_TTL_MS"]
