"""The fixed ids of the fixture's people and hosts (make_fixture writes them, the test reads them)."""
HOST = "5e1f0c9a-0000-4000-8000-000000000001"
SHORT_HOST = "5e1f0c9a-0000-4000-8000-000000000002"
HOST_USER = "fixture-host-user"
DIRECTORY_USER = "fixture-directory-user"
HOST_ROLE = {"id": "5e1f0c9a-0000-4000-8000-0000000000a1", "name": "fixture-host-role"}
DIRECTORY_ROLE = {"id": "5e1f0c9a-0000-4000-8000-0000000000a2", "name": "fixture-directory-role"}
