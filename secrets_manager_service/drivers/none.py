"""The driver for accounts whose password is only stored, never changed on a host."""
from __future__ import annotations

from .base import Target


class NoneDriver:
    def rotate(self, target: Target, new_password: str) -> None:
        """Nothing to change: the new version in the Vault is the rotation."""

    def verify(self, target: Target, password: str) -> bool:
        """Nothing to check against."""
        return True

    def check_bound(self, target: Target) -> None:
        """Nothing is ever sent anywhere."""
