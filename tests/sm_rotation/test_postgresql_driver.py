"""The PostgreSQL driver against a real server that checks passwords (scram-sha-256)."""
from __future__ import annotations

import uuid

import pytest
from psycopg import sql

from secrets_manager_service.drivers import RotationFailed, Target, TargetUnreachable, binding
from secrets_manager_service.drivers.registry import driver_for
from tests.sm_rotation.pg_target import can_login, connect

HOSTILE_PASSWORD = "it's \"quoted\" \\back\\slash\\ $$ $tag$ '; DROP ROLE postgres; -- ✓"


@pytest.fixture()
def superuser(password_postgres):
    host, port, user, password = password_postgres
    with connect(host, port, user, password) as conn:
        yield conn


def new_role(superuser, password: str, *options: str) -> str:
    name = f"acct_{uuid.uuid4().hex[:8]}"
    superuser.execute(sql.SQL("CREATE ROLE {} LOGIN " + " ".join(options) + " PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(password)))
    return name


@pytest.fixture()
def main_account(superuser):
    """A non-superuser that may change other roles' passwords (CREATEROLE + ADMIN on them)."""
    password = "main-" + uuid.uuid4().hex
    return new_role(superuser, password, "CREATEROLE"), password


def target(server, account, old_password=None, *, main=None, use_main=False, port=None, options=None) -> Target:
    host, real_port = server[0], server[1]
    port = port or real_port
    return Target(address=host, port=port, account=account, old_password=old_password,
                  main_account=main[0] if main else None, main_password=main[1] if main else None,
                  use_main_account=use_main, script=None, operating_system="LINUX",
                  certificate_validation_options=options,
                  bound_to=binding.host_fingerprint("POSTGRESQL", host, port, options))  # set for this endpoint


@pytest.fixture()
def driver():
    return driver_for("POSTGRESQL")


def logs_in(server, account, password):
    return can_login(server[0], server[1], account, password)


def test_rotate_as_the_account_itself(driver, password_postgres, superuser):
    account = new_role(superuser, "old-password-1")
    driver.rotate(target(password_postgres, account, "old-password-1"), "new-password-1")
    assert logs_in(password_postgres, account, "new-password-1")
    assert not logs_in(password_postgres, account, "old-password-1")


def test_rotate_as_the_main_account(driver, password_postgres, superuser, main_account):
    account = new_role(superuser, "old-password-2")
    superuser.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
        sql.Identifier(account), sql.Identifier(main_account[0])))
    # the account's own old password is wrong on purpose: only the main account logs in
    driver.rotate(target(password_postgres, account, "not-the-old-one", main=main_account, use_main=True),
                  "new-password-2")
    assert logs_in(password_postgres, account, "new-password-2")
    assert not logs_in(password_postgres, account, "old-password-2")


def test_the_server_stores_a_scram_verifier_and_never_sees_the_password(driver, password_postgres, superuser,
                                                                        main_account):
    account = new_role(superuser, "old-password-3")
    superuser.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
        sql.Identifier(account), sql.Identifier(main_account[0])))
    superuser.execute(sql.SQL("ALTER ROLE {} SET log_statement = 'all'").format(sql.Identifier(main_account[0])))
    new_password = "never-in-the-log-" + uuid.uuid4().hex
    driver.rotate(target(password_postgres, account, main=main_account, use_main=True), new_password)
    assert logs_in(password_postgres, account, new_password)
    stored = superuser.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (account,)).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$")
    log = password_postgres.log_path.read_text(errors="replace")
    assert f'ALTER ROLE "{account}" WITH PASSWORD' in log  # the statement was logged...
    assert new_password not in log  # ...without the password


def test_quotes_and_backslashes_survive(driver, password_postgres, superuser):
    account = new_role(superuser, "old-password-4")
    driver.rotate(target(password_postgres, account, "old-password-4"), HOSTILE_PASSWORD)
    assert logs_in(password_postgres, account, HOSTILE_PASSWORD)
    assert driver.verify(target(password_postgres, account), HOSTILE_PASSWORD)
    assert logs_in(password_postgres, "postgres", password_postgres[3])


def test_an_awkward_role_name_is_quoted(driver, password_postgres, superuser):
    account = f'Odd "Name"; {uuid.uuid4().hex[:6]}'
    superuser.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'old-password-5'").format(sql.Identifier(account)))
    driver.rotate(target(password_postgres, account, "old-password-5"), "new-password-5")
    assert logs_in(password_postgres, account, "new-password-5")


def test_verify(driver, password_postgres, superuser):
    account = new_role(superuser, "right-password")
    assert driver.verify(target(password_postgres, account), "right-password") is True
    assert driver.verify(target(password_postgres, account), "wrong-password") is False
    assert driver.verify(target(password_postgres, "no_such_role"), "right-password") is False


def test_verify_of_a_role_that_may_not_log_in_is_false(driver, password_postgres, superuser):
    account = new_role(superuser, "right-password")
    superuser.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(account)))
    assert driver.verify(target(password_postgres, account), "right-password") is False


def test_wrong_old_password_fails_without_leaking(driver, password_postgres, superuser):
    account = new_role(superuser, "old-password-6")
    with pytest.raises(RotationFailed) as caught:
        driver.rotate(target(password_postgres, account, "wrong-old-password-6"), "new-password-6")
    message = str(caught.value)
    assert message == "authentication failed"
    assert "wrong-old-password-6" not in message and "new-password-6" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert logs_in(password_postgres, account, "old-password-6")


def test_main_account_without_the_right_fails_with_the_sqlstate_only(driver, password_postgres, superuser,
                                                                      main_account):
    account = new_role(superuser, "old-password-7")  # no ADMIN OPTION granted to the main account
    with pytest.raises(RotationFailed) as caught:
        driver.rotate(target(password_postgres, account, main=main_account, use_main=True), "new-password-7")
    message = str(caught.value)
    assert message.startswith("ALTER ROLE failed: InsufficientPrivilege (SQLSTATE 42501)")
    assert "new-password-7" not in message and "SCRAM" not in message
    assert logs_in(password_postgres, account, "old-password-7")


def test_missing_role_as_main_account(driver, password_postgres):
    superuser = (password_postgres[2], password_postgres[3])
    with pytest.raises(RotationFailed, match=r"UndefinedObject \(SQLSTATE 42704\)") as caught:
        driver.rotate(target(password_postgres, "no_such_role", main=superuser, use_main=True), "new-password-8")
    assert "new-password-8" not in str(caught.value)


def test_unreachable_port(driver, password_postgres):
    # A target that is down is told from one that refused (issue 11), and nothing changed on it.
    closed = target(password_postgres, "anyone", "old", port=1)
    with pytest.raises(TargetUnreachable, match="connection refused") as caught:
        driver.rotate(closed, "new-password-9")
    assert caught.value.unchanged
    with pytest.raises(TargetUnreachable, match="connection refused"):
        driver.verify(closed, "old")


def test_a_refused_login_or_statement_leaves_the_target_unchanged(driver, password_postgres):
    with pytest.raises(RotationFailed, match="authentication failed") as caught:
        driver.rotate(target(password_postgres, "no_such_role", "wrong"), "new-password-10")
    assert caught.value.unchanged and not isinstance(caught.value, TargetUnreachable)
    superuser = (password_postgres[2], password_postgres[3])
    with pytest.raises(RotationFailed, match="SQLSTATE 42704") as caught:
        driver.rotate(target(password_postgres, "no_such_role", main=superuser, use_main=True), "new-password-11")
    assert caught.value.unchanged


def test_missing_credentials(driver, password_postgres):
    with pytest.raises(RotationFailed, match="current password is unknown"):
        driver.rotate(target(password_postgres, "anyone"), "new")
    with pytest.raises(RotationFailed, match="main account"):
        driver.rotate(target(password_postgres, "anyone", use_main=True), "new")


@pytest.mark.parametrize("option, mode", [
    (None, "prefer"), ("", "prefer"), ("DISABLED", "prefer"), ("/etc/ssl/ca.pem", "prefer"),
    ("disable", "disable"), ("require", "require"), ("VERIFY-FULL", "verify-full"), ("verify-ca", "verify-ca"),
])
def test_sslmode_from_certificate_validation_options(option, mode):
    from secrets_manager_service.drivers.postgresql import sslmode

    assert sslmode(target(("h", 5432), "a", options=option)) == mode


def test_sslmode_require_against_a_server_without_tls(driver, password_postgres, superuser):
    account = new_role(superuser, "old-password-10")
    with pytest.raises(RotationFailed) as caught:
        driver.rotate(target(password_postgres, account, "old-password-10", options="require"), "new-password-10")
    assert "new-password-10" not in str(caught.value)
    assert logs_in(password_postgres, account, "old-password-10")
