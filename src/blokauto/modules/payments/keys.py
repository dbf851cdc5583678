"""The payments module's state-key prefixes, declared once: its state maps, the verifiers and the
access-policy code read them here."""

CURRENCY = "pay/cur/"  # currency code -> its issuer, reserves and supply
ACCOUNT = "pay/acct/"  # (currency, owner) -> balance in minor units
LIMIT = "pay/limit/"  # (VIN, currency) -> the spending limit of the vehicle's wallet
TARIFF = "pay/tariff/"  # (merchant organisation, tariff id) -> its published tariff
CHANNEL = "pay/ch/"  # channel id -> a payment channel
FARE = "pay/fare/"  # fare id -> a journey fare agreed by its operators
ESCROW = "pay/esc/"  # escrow id -> a vehicle sale's locked price
HELD = "pay/held/"  # (currency, module) -> units another module's rules hold for a while (energy bids)
NEXT = "pay/next/"  # "channel", "fare", "escrow" -> the next id
