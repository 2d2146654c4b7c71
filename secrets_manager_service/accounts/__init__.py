"""One account model: host accounts and managed directory accounts as one family of accounts.

family.AccountFamily is what the checkout and rotation rules need of a kind of account;
hosts.HostAccounts and directory.DirectoryAccounts are its two implementations (families.py
names them). The rules are written once: checkouts.py (checking out, reading, releasing,
revoking, expiring) and rotations.py (the write-ahead rotation and its reconciliation); each
takes the family and its dependencies (database, the Vault's password history) as arguments.
Their rows are in one table each, keyed by (account_kind, account_id): checkout_store.py
(sm_checkouts), queue_store.py (sm_rotations), state_store.py (sm_rotation_states). The
families' own SQL stays in their stores (account_secrets.store, rotation.store for hosts;
target_domains' checkout_store, rotation_store, managed.store for directory accounts), which
import only the leaves from here: kinds.py (the kinds' names and what a live checkout is) and
queue_store.py.
"""
