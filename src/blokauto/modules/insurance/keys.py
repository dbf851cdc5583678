"""The insurance module's state-key prefixes, declared once."""

PRODUCT = "ins/product/"  # (insurer organisation, product id) -> a product and its pricing
POLICY = "ins/policy/"  # policy id -> a policy
VEHICLE = "ins/veh/"  # VIN -> the ids of its policies, oldest first
STATEMENT = "ins/stmt/"  # (policy id, period) -> a premium statement
CLAIM = "ins/claim/"  # claim id -> a claim
VEHICLE_CLAIMS = "ins/veh-claims/"  # (VIN, holder since) -> the ids of the claims of that holding, oldest first
CRASH_CLAIM = "ins/crash-claim/"  # (VIN, crash seq) -> the claim that crash opened
NEXT = "ins/next/"  # "policy", "claim" -> the next id
