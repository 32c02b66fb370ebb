"""SQLite persistence: the only package that writes SQL."""

from koda.store.db import Store, StoreError
from koda.store.rows import MessageRow, SessionRow, SessionSummary, UsageTotals

__all__ = ["MessageRow", "SessionRow", "SessionSummary", "Store", "StoreError", "UsageTotals"]
