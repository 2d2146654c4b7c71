"""Development programs, beside the run-time library rather than part of it: no service imports
them when it loads (tests/common/test_layout.py). The development token issuer (issuer/), the
`make run` launcher (devstack), a private OpenLDAP slapd for tests and smoke runs (slapd), and the
embedded PostgreSQL a service starts only when DATABASE_URL is unset (embedded_pg)."""
