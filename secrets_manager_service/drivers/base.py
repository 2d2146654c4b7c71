"""What every rotation driver shares: the Target it works on, the Driver protocol, and its failures.

Every failure surfaces as RotationFailed, whose message is stored as the
account's `last_error` and shown to admins, so it is built only from safe
facts (exception types, SQLSTATE classes, "authentication failed", exit
statuses), never from a driver's own message, which may echo a statement
or script holding a password.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

PROTOCOLS = ("POSTGRESQL", "SSH", "NONE")


class RotationFailed(Exception):
    """A rotation or verification that could not be done; the message never holds a password.

    `unchanged` is True when the failure certainly left the target's password as it was (the
    target refused the login or the change); otherwise the target may or may not have taken
    the new password, and only asking it tells (see accounts.rotations).
    """

    unchanged = False

    def __init__(self, message: str, *, unchanged: bool | None = None):
        super().__init__(message)
        if unchanged is not None:
            self.unchanged = unchanged


class TargetUnreachable(RotationFailed):
    """No connection to the target could be made (refused, timed out, no route, name unknown):
    nothing reached it, so nothing changed there."""

    unchanged = True


@dataclass(frozen=True, repr=False)
class Target:
    """Where and as whom a password is rotated: one account of one HostSecret."""

    address: str
    port: int
    account: str
    old_password: str | None
    main_account: str | None
    main_password: str | None
    use_main_account: bool
    script: str | None
    operating_system: str
    certificate_validation_options: str | None
    # The host endpoint fingerprint (drivers.binding) every stored password this target carries,
    # and every one a verification is given, was set for; None: they were set for different
    # endpoints, or for none. A driver connects only where this matches.
    bound_to: str | None = None

    def __repr__(self) -> str:
        shown = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("password"):
                value = "None" if value is None else "'***'"
            elif field.name == "script":
                value = "None" if value is None else f"<{len(value)} chars>"
            else:
                value = repr(value)
            shown.append(f"{field.name}={value}")
        return f"Target({', '.join(shown)})"

    __str__ = __repr__

    def login(self) -> tuple[str, str]:
        """(user, password) the driver logs in with to rotate: the main account's or the account's own."""
        if self.use_main_account:
            if not self.main_account or self.main_password is None:
                raise RotationFailed("use_main_account is set but the main account or its password is missing",
                                     unchanged=True)
            return self.main_account, self.main_password
        if self.old_password is None:
            raise RotationFailed("the account's current password is unknown and no main account is used",
                                 unchanged=True)
        return self.account, self.old_password


@runtime_checkable
class Driver(Protocol):
    def rotate(self, target: Target, new_password: str) -> None:
        """Set the account's password to new_password on the target; raise RotationFailed if not done."""

    def verify(self, target: Target, password: str) -> bool:
        """True if the account logs in with password; RotationFailed if the target cannot be reached."""

    def check_bound(self, target: Target) -> None:
        """binding.NotBound unless the target's stored passwords may go to its endpoint (the drivers
        check this themselves before every connection; callers ask first for a clear error)."""
