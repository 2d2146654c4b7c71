"""Rotation drivers: change an account's password on its target host, and check a password works.

The shared types live in drivers.base and are named here for callers; drivers.registry picks a
driver by protocol. This file imports no driver, so the drivers may import the package (e.g.
`from . import binding`) without a cycle.
"""
from __future__ import annotations

from .base import PROTOCOLS, Driver, RotationFailed, Target, TargetUnreachable

__all__ = ["PROTOCOLS", "Driver", "RotationFailed", "Target", "TargetUnreachable"]
