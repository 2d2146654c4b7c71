"""The worker's pass over target domains: queued and periodic scans (rotations and checkouts join here)."""
from __future__ import annotations

from dataclasses import dataclass

from secrets_manager_service.target_domains import scans


@dataclass
class DirectoryPass:
    scans: int = 0


def run_pass() -> DirectoryPass:
    return DirectoryPass(scans=scans.run_pass())
