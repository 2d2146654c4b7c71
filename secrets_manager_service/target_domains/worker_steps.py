"""The worker's pass over target domains: queued and periodic scans, then the directory accounts'
checkout expiries and rotations (queued, scheduled, after release), under rotation.service's rules."""
from __future__ import annotations

from dataclasses import dataclass

from secrets_manager_service.target_domains import rotations, scans


@dataclass
class DirectoryPass:
    scans: int = 0
    expired: int = 0
    scheduled: int = 0
    rotated: int = 0
    failed: int = 0


def run_pass() -> DirectoryPass:
    from secrets_manager_service.target_domains import checkouts

    result = DirectoryPass(scans=scans.run_pass(), expired=checkouts.expire())
    result.scheduled = rotations.enqueue_scheduled()
    result.rotated, result.failed = rotations.run_due()
    return result
