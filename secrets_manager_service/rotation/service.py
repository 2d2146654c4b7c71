"""The worker's pass over host accounts: expire their checkouts, queue their scheduled
rotations, run the due ones, under the rules of accounts.checkouts and accounts.rotations
(where the write-ahead steps, reconciliation and failures are explained).
"""
from __future__ import annotations

from dataclasses import dataclass

from secrets_manager_service.accounts import checkouts, rotations
from secrets_manager_service.accounts.families import HOSTS

CHECKPOINTS = rotations.CHECKPOINTS  # where a test may stop the worker (SM_WORKER_PAUSE_AT)


@dataclass
class PassResult:
    expired: int = 0
    scheduled: int = 0
    rotated: int = 0
    failed: int = 0
    skipped: int = 0


def run_pass() -> PassResult:
    """One pass of the worker over host accounts."""
    deps = rotations.app_deps()
    result = PassResult(expired=checkouts.expire(HOSTS, checkouts.app_deps()),
                        scheduled=rotations.enqueue_scheduled(HOSTS, deps))
    for outcome, count in rotations.run_due(HOSTS, deps).items():
        setattr(result, outcome, count)
    return result


def run_one_due() -> str | None:
    """Claim and run one due host rotation: "rotated", "failed" or "skipped"; None when none is due."""
    return rotations.run_one_due(HOSTS, rotations.app_deps())
