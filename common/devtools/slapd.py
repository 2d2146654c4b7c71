"""A private OpenLDAP `slapd` with users and passwords, to scan and rotate against (the tests'
directory, and `make run`'s demo directory).

Debian's `slapd` package (installed by .ci/run with debconf set so no system
instance is configured) provides the binary and the schema files; everything
else is generated here: a slapd.conf, an mdb database loaded with `slapadd`
(fast enough for 20,000 users), a test CA with a server certificate for
LDAPS/StartTLS, and a bind account that may reset `userPassword`. It listens
on 127.0.0.1 (with TLS also on 127.0.0.2, whose name the certificate does not carry) on
free ports and is stopped afterwards, even when the test fails.

    with Slapd(tmp_path, users=5) as directory:
        directory.ldap_url, directory.bind_dn, directory.bind_password, directory.password_of("user1")
"""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
SUFFIX = "dc=example,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
BIND_DN = f"cn=binder,ou=service,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"


def available() -> str | None:
    """None when slapd can run here, else why not (for a skip reason)."""
    if not (os.path.exists(SLAPD) and os.path.exists(SLAPADD)):
        return ("slapd is not installed (Debian: echo 'slapd slapd/no_configuration boolean true' | "
                "debconf-set-selections; apt-get install slapd ldap-utils; .ci/run does)")
    if not (SCHEMA_DIR / "inetorgperson.schema").exists():
        return "the slapd schema files are missing from /etc/ldap/schema"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CertificateAuthority:
    """A CA and a server certificate for 127.0.0.1 and localhost (not 127.0.0.2)."""

    def __init__(self, folder: Path, common_name: str = "slapd test CA"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        self.ca_file = folder / "ca.pem"
        self.cert_file = folder / "server.pem"
        self.key_file = folder / "server.key"
        self.ca_file.write_text(self.ca_pem)
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        os.chmod(self.key_file, 0o600)


def _entry(dn: str, attributes: list[tuple[str, str]]) -> str:
    return "\n".join([f"dn: {dn}", *(f"{name}: {value}" for name, value in attributes)]) + "\n\n"


def user_entry(uid: str, *, full_name: str | None = None, mail: str | None = None) -> str:
    full_name = full_name or f"User {uid}"
    return _entry(f"uid={uid},{PEOPLE}", [
        ("objectClass", "inetOrgPerson"), ("uid", uid), ("cn", full_name), ("sn", uid),
        ("mail", mail or f"{uid}@example.test"),
    ])


class Slapd:
    """A running slapd; `users` uid=user1..userN under ou=people, with random passwords (see password_of)."""

    def __init__(self, folder, *, users: int = 0, passwords_for: int | None = None, tls: bool = True,
                 port: int | None = None, bind_password: str | None = None, keep_data: bool = False):
        self.folder = Path(folder)
        # keep_data: a database loaded by an earlier run in `folder` is served again, as a real
        # directory keeps its entries (and their entryUUIDs) across restarts; `bind_password` must
        # then be the one it was loaded with. `reused` says whether that happened; the users'
        # passwords are then not known here (password_of), only whatever set them knows them.
        self.keep_data = keep_data
        self.reused = False
        self.users = users
        self.passwords_for = users if passwords_for is None else passwords_for
        self.tls = tls
        self.bind_password = bind_password or "bind-" + secrets.token_urlsafe(12)
        self.root_password = "root-" + secrets.token_urlsafe(12)
        self.port = port or free_port()
        self.tls_port = free_port()
        self.passwords: dict[str, str] = {}
        self.process: subprocess.Popen | None = None
        self.ca: CertificateAuthority | None = None

    # --- addresses --------------------------------------------------------

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},{PEOPLE}"

    def password_of(self, uid: str) -> str:
        return self.passwords[uid]

    # --- lifecycle --------------------------------------------------------

    def __enter__(self) -> "Slapd":
        loaded_marker = self.folder / "loaded"  # written once the users and their passwords are in
        self.reused = self.keep_data and loaded_marker.exists()
        if not self.reused:
            shutil.rmtree(self.folder, ignore_errors=True)  # slapadd loads into an empty database only
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "db").mkdir(exist_ok=True)
        if self.tls:
            self.ca = CertificateAuthority(self.folder / "tls")
        (self.folder / "slapd.conf").write_text(self._config())
        if not self.reused:
            self._load()
        try:
            self.start()
            if not self.reused:
                self._set_passwords()
                loaded_marker.touch()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        urls = [f"ldap://127.0.0.1:{self.port}/"]
        if self.tls:
            # 127.0.0.2 too, a name the certificate does not carry (the TLS tests' wrong name)
            urls += [f"ldap://127.0.0.2:{self.port}/", f"ldaps://127.0.0.1:{self.tls_port}/",
                     f"ldaps://127.0.0.2:{self.tls_port}/"]
        # -d 0: stay in the foreground (so we own the process) without debug output.
        self.process = subprocess.Popen([SLAPD, "-f", str(self.folder / "slapd.conf"), "-h", " ".join(urls), "-d", "0"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("slapd exited: " + self.process.stderr.read().decode(errors="replace")[-2000:])
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        """Stop slapd (it flushes its database on SIGTERM); kill it if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def kill(self) -> None:
        """Take the directory away at once, as a crash or a cut network would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    # --- content ----------------------------------------------------------

    def _config(self) -> str:
        folder = self.folder
        schema = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in ("core", "cosine", "inetorgperson", "nis"))
        tls = ""
        if self.ca is not None:
            tls = (f"TLSCACertificateFile {self.ca.ca_file}\nTLSCertificateFile {self.ca.cert_file}\n"
                   f"TLSCertificateKeyFile {self.ca.key_file}\n")
        # The bind account may reset passwords (Password Modify as an administrative reset) and read
        # everything; users may bind and change their own password; nobody else sees anything.
        # The soft size limit (500) is what a plain search gets; paged searches may read everything.
        return f"""{schema}
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
{tls}
sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited
database mdb
maxsize 1073741824
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {self.root_password}
directory {folder}/db
index objectClass eq
index uid eq
access to attrs=userPassword
    by dn.exact="{BIND_DN}" write
    by self write
    by anonymous auth
    by * none
access to *
    by dn.exact="{BIND_DN}" read
    by self read
    by * none
"""

    def _load(self) -> None:
        """Load the base entries and the users offline with slapadd (20,000 users in seconds)."""
        ldif_path = self.folder / "initial.ldif"
        with open(ldif_path, "w", encoding="utf-8") as ldif:
            ldif.write(_entry(SUFFIX, [("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"),
                                       ("o", "Example")]))
            ldif.write(_entry(f"ou=service,{SUFFIX}", [("objectClass", "organizationalUnit"), ("ou", "service")]))
            ldif.write(_entry(PEOPLE, [("objectClass", "organizationalUnit"), ("ou", "people")]))
            ldif.write(_entry(BIND_DN, [("objectClass", "organizationalRole"), ("objectClass", "simpleSecurityObject"),
                                        ("cn", "binder"), ("userPassword", self.bind_password)]))
            for i in range(1, self.users + 1):
                ldif.write(user_entry(f"user{i}"))
        subprocess.run([SLAPADD, "-q", "-f", str(self.folder / "slapd.conf"), "-l", str(ldif_path)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def admin(self):
        """A python-ldap connection bound as the directory's root (for the tests' own changes)."""
        import ldap

        conn = ldap.initialize(self.ldap_url)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        conn.simple_bind_s(ROOT_DN, self.root_password)
        return conn

    def _set_passwords(self) -> None:
        """Give the first users passwords by RFC 3062 Password Modify, as an administrator would."""
        if not self.passwords_for:
            return
        conn = self.admin()
        try:
            for i in range(1, self.passwords_for + 1):
                self.set_password(f"user{i}", "pw-" + secrets.token_urlsafe(12), conn=conn)
        finally:
            conn.unbind_s()

    def set_password(self, uid: str, password: str, conn=None) -> None:
        own = conn is None
        conn = conn or self.admin()
        try:
            conn.passwd_s(self.user_dn(uid), None, password)
            self.passwords[uid] = password
        finally:
            if own:
                conn.unbind_s()

    def add_user(self, uid: str, **kwargs) -> None:
        import ldap.modlist

        conn = self.admin()
        try:
            full_name = kwargs.get("full_name") or f"User {uid}"
            conn.add_s(self.user_dn(uid), ldap.modlist.addModlist({
                "objectClass": [b"inetOrgPerson"], "uid": [uid.encode()], "cn": [full_name.encode()],
                "sn": [uid.encode()], "mail": [(kwargs.get("mail") or f"{uid}@example.test").encode()]}))
        finally:
            conn.unbind_s()

    def delete_user(self, uid: str) -> None:
        conn = self.admin()
        try:
            conn.delete_s(self.user_dn(uid))
        finally:
            conn.unbind_s()

    def binds(self, uid: str, password: str) -> bool:
        """Whether uid binds with password (a simple bind, as the directory's users do)."""
        import ldap

        conn = ldap.initialize(self.ldap_url)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        try:
            conn.simple_bind_s(self.user_dn(uid), password)
            return True
        except ldap.INVALID_CREDENTIALS:
            return False
        finally:
            conn.unbind_s()
