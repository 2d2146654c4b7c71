"""Scanned accounts: the directory's users as the last complete scan found them."""
