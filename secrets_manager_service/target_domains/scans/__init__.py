"""Scans: reading a target domain's directory in the worker, staged and merged into its scanned accounts."""
