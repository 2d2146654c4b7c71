"""The worker's pass over target domains: queued and periodic scans, each followed by the
auto-onboarding of what it found, then the directory accounts' checkout expiries and rotations
(queued, scheduled, after release), under accounts.checkouts' and accounts.rotations' rules."""
from __future__ import annotations

from dataclasses import dataclass

from secrets_manager_service.accounts import checkouts, rotations
from secrets_manager_service.accounts.families import DIRECTORY
from secrets_manager_service.target_domains.managed import service as managed
from secrets_manager_service.target_domains.scans import service as scans

MAX_SCANS_PER_PASS = 10


@dataclass
class DirectoryPass:
    scans: int = 0
    expired: int = 0
    scheduled: int = 0
    rotated: int = 0
    failed: int = 0


def scan_one() -> str | None:
    """Run one queued scan and, after a DONE scan of a domain that auto-onboards, onboard the new
    accounts: its final status ("DONE", "FAILED", "GONE"); None if none is queued."""
    run = scans.run_one_queued()
    if run is None:
        return None
    if run.status == "DONE" and run.domain["auto_onboarding"]:
        managed.auto_onboard(run.domain["id"])
    return run.status


def scan_pass() -> int:
    """Queue the periodic scans that are due, then run queued scans; returns how many ran."""
    scans.queue_periodic()
    ran = 0
    for _ in range(MAX_SCANS_PER_PASS):
        if scan_one() is None:
            break
        ran += 1
    return ran


def run_pass() -> DirectoryPass:
    deps = rotations.app_deps()
    result = DirectoryPass(scans=scan_pass(), expired=checkouts.expire(DIRECTORY, checkouts.app_deps()))
    result.scheduled = rotations.enqueue_scheduled(DIRECTORY, deps)
    outcomes = rotations.run_due(DIRECTORY, deps)
    result.rotated, result.failed = outcomes["rotated"], outcomes["failed"]
    return result
