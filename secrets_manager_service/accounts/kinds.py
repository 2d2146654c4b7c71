"""The account kinds of the shared tables (`account_kind`) and each one's foreign-key column."""
from __future__ import annotations

HOST = "host"
DIRECTORY = "directory"

# Each kind keeps a foreign key of its own, so deleting an account deletes its rows (migration 0012).
FOREIGN_KEY = {HOST: "host_account_id", DIRECTORY: "managed_account_id"}

# A checkout (sm_checkouts c) is live until it is released or its time is up, whether or not the
# worker has marked it yet.
LIVE_CHECKOUT = "(c.ended IS NULL AND c.expires > now())"
