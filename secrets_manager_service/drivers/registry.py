"""The driver for a host account's protocol, imported on demand."""
from __future__ import annotations

from .base import PROTOCOLS, Driver


def driver_for(protocol: str) -> Driver:
    """The driver for a HostSecret's protocol ("POSTGRESQL", "SSH", "NONE")."""
    # Imported on demand: a worker that only rotates one kind needs only that client library.
    if protocol == "POSTGRESQL":
        from .postgresql import PostgreSQLDriver

        return PostgreSQLDriver()
    if protocol == "SSH":
        from .ssh import SSHDriver

        return SSHDriver()
    if protocol == "NONE":
        from .none import NoneDriver

        return NoneDriver()
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
