"""Reconciliation of sector databases against the population register ("correct, sufficient,
clean, alive"): agency extracts in, one verdict per row out (docs/reconcile.md)."""
