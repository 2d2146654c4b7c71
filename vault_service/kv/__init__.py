"""HashiCorp Vault's KV v2 HTTP API at /v1/, over the versioned service (docs/API-hashicorp-kv.md).

Nothing here decides what happens to a secret: every rule (versions, check-and-set, pruning,
deletion times, access, audit) is vault_service.versioned.service's. This package translates
HashiCorp's wire protocol to those calls and back: paths and methods (views), bodies and
parameters (inputs), envelopes, errors and times (wire), and answers the sys/ and auth/token/
paths clients probe (system).

The package's one entry point is vault_service.kv.views.install; this file imports nothing, so
the modules here can import one another through the package without a cycle.
"""
