"""The vehicles module's state-key prefixes, declared once: its state maps, the verifiers (Python
and, generated, the browser's) and the report read them here."""

VEHICLE = "veh/v/"  # one record per VIN, with its running history hash
WMI = "veh/wmi/"  # manufacturer code -> organisation id
