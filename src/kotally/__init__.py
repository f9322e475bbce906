"""Kotally: a credit and entitlement ledger."""

__version__ = "0.1.0"
