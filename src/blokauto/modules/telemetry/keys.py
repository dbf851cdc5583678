"""The telemetry module's state-key prefixes, declared once."""

VEHICLE = "tel/veh/"  # VIN -> its batch and crash counts, the end of its last batch, running totals
BATCH = "tel/batch/"  # (VIN, seq) -> a committed batch: root, summary, totals up to it
CRASH = "tel/crash/"  # (VIN, seq) -> a crash the vehicle reported
CRASH_AT = "tel/crash-at/"  # (VIN, t) -> the crash reported for that time (a crash is reported once)
