"""Managed accounts: scanned accounts whose passwords the Secrets Manager keeps and rotates."""
