"""A private rsyslog (Debian `rsyslog` + `rsyslog-gnutls`) for tests: a TLS listener on 127.0.0.1
with a test CA made here, writing every message it parsed as one JSON line (its RFC 5424 fields
and the raw message) to a file the test reads. Its own config, pid file and work folder; no
system instance is involved."""
from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import support

_GTLS_MODULES = ("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so", "/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so")

_CONFIG = """
global(workDirectory="{work}" defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{ca}"
       defaultNetstreamDriverCertFile="{cert}" defaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="parsed" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}}
action(type="omfile" file="{out}" template="parsed")
"""


def require_rsyslog() -> str:
    binary = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if binary is None:
        pytest.skip("rsyslogd is not installed (Debian: apt-get install rsyslog rsyslog-gnutls)")
    if not any(Path(path).exists() for path in _GTLS_MODULES):
        pytest.skip("rsyslog's TLS driver is not installed (Debian: apt-get install rsyslog-gnutls)")
    return binary


def make_test_ca(folder: Path) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `folder`."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("audit test CA")).issuer_name(name("audit test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
              .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server-key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return {key: str(path) for key, path in paths.items()}


class Rsyslog:
    """rsyslogd -n with its own config; start() and stop() as often as a test likes (same port,
    same output file, appended)."""

    def __init__(self, folder: Path, port: int | None = None, tls: dict[str, str] | None = None):
        self.binary = require_rsyslog()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or support.free_port()
        self.tls = tls or make_test_ca(folder)
        self.work = folder / "work"
        self.work.mkdir(exist_ok=True)
        self.output = folder / "received.jsonl"
        self.config = folder / "rsyslog.conf"
        self.config.write_text(_CONFIG.format(work=self.work, port=self.port, out=self.output, **self.tls))
        self.process: subprocess.Popen | None = None
        self._log = open(folder / "rsyslogd.log", "ab")

    def start(self) -> "Rsyslog":
        self.process = subprocess.Popen([self.binary, "-n", "-f", str(self.config), "-i", str(self.folder / "pid")],
                                        stdout=self._log, stderr=subprocess.STDOUT)
        support.wait_until_listening(self.port, self.process, timeout=20)
        return self

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it (it writes out what it has read, then exits)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        self._log.close()

    def received(self) -> list[dict]:
        if not self.output.exists():
            return []
        return [json.loads(line) for line in self.output.read_text().splitlines() if line.strip()]

    def wait_for(self, condition, *, timeout: float = 90.0) -> list[dict]:
        """What arrived, once `condition(messages)` holds (else the test fails, showing the count)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.received()
            if condition(messages):
                return messages
            assert time.monotonic() < deadline, f"rsyslog did not get what was expected ({len(messages)} messages)"
            time.sleep(0.3)
