"""A directory of 20,000 users scans in bounded memory and lists page by page (real slapd)."""
from __future__ import annotations

import time
import tracemalloc

import pytest

from common.devtools import slapd
from tests.secrets_manager.target_domains.helpers import TD, create_domain

USERS = 20_000
# The scan holds one page (500 entries) at a time. Holding all 20,000 entries as python-ldap
# results takes about 21 MiB of Python allocations (measured with tracemalloc on this machine);
# the paged, staged scan peaked at 1.5 MiB. The bound leaves room for noise, not for all entries.
MEMORY_BOUND_BYTES = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def big_directory(tmp_path_factory):
    reason = slapd.available()
    if reason:
        pytest.skip(reason)
    with slapd.Slapd(tmp_path_factory.mktemp("big"), users=USERS, passwords_for=0, tls=False) as server:
        yield server


def test_twenty_thousand_users_scan_in_bounded_memory(sm, big_directory):
    from secrets_manager_service.target_domains import flows

    with sm.app.app_context():
        while flows.scan_one() is not None:  # other tests' queued scans, if any
            pass
    domain_id = create_domain(sm, big_directory)  # an enabled domain's first scan is queued at once
    tracemalloc.start()
    started = time.monotonic()
    try:
        with sm.app.app_context():
            assert flows.scan_one() == "DONE"
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    domain = sm.get(f"{TD}/{domain_id}").get_json()
    print(f"scan of {USERS} users: {seconds:.1f} s, peak Python memory {peak / 2**20:.1f} MiB")
    assert domain["scan_message"] == f"{USERS} accounts: {USERS} new, 0 removed"
    assert peak < MEMORY_BOUND_BYTES
    # Lists stay pages: the last page of 20,000, sorted, and a search.
    last = sm.get(f"{TD}/{domain_id}/accounts", query={"offset": USERS - 100, "limit": 100, "sortkey": "created"})
    assert last.status_code == 200 and last.get_json()["count"] == USERS and len(last.get_json()["items"]) == 100
    found = sm.post(f"{TD}/{domain_id}/accounts/search", json={"keywords": "user19999"}).get_json()
    assert [a["username"] for a in found["items"]] == ["user19999"]
    # A second scan of the same directory finds nothing new and changes nothing.
    with sm.app.app_context():
        sm.post(f"{TD}/{domain_id}/refresh")
        assert flows.scan_one() == "DONE"
    assert sm.get(f"{TD}/{domain_id}").get_json()["scan_message"] == f"{USERS} accounts: 0 new, 0 removed"
