"""GET /roles: the roles the Vault's role registry knows (learnt from verified tokens' `roles`
claims, and from role names clients sent for roles never seen), so that users and the CLI can
choose read and write roles by name and tell a typo from a role."""
