"""The SSH driver against a paramiko-based stand-in host that runs exec requests with bash.

There is no sshd on the test machine; the stand-in (tests/sm_rotation/ssh_server.py)
checks passwords against a file that its fake `chpasswd` rewrites, so a rotation
really changes what the host accepts.
"""
from __future__ import annotations

import pytest

from secrets_manager_service.drivers import RotationFailed, Target, TargetUnreachable, binding
from secrets_manager_service.drivers.registry import driver_for
from secrets_manager_service.drivers.ssh import SSHDriver
from tests.sm_rotation.ssh_server import fake_ssh_host

CHPASSWD = "echo {{ .Username }}:{{ .Password }} | chpasswd\n"
HOSTILE_PASSWORD = "it's \"q\" `id` $(touch pwned) $HOME \\ ; | & \u2019 ✓"


@pytest.fixture()
def host(tmp_path):
    with fake_ssh_host(tmp_path, {"alice": "alice-old", "root": "root-password"}) as server:
        yield server


def target(host, *, account="alice", old="alice-old", script=CHPASSWD, use_main=False, main=("root", "root-password"),
           options="DISABLED", port=None) -> Target:
    port = port or host.port
    return Target(address=host.address, port=port, account=account, old_password=old,
                  main_account=main[0], main_password=main[1], use_main_account=use_main, script=script,
                  operating_system="LINUX", certificate_validation_options=options,
                  bound_to=binding.host_fingerprint("SSH", host.address, port, options))  # set for this endpoint


def test_rotate_as_the_account_itself(host):
    driver = driver_for("SSH")
    driver.rotate(target(host), "alice-new-1")
    assert host.passwords["alice"] == "alice-new-1"
    assert host.auth_attempts == ["alice"]
    assert driver.verify(target(host), "alice-new-1") is True
    assert driver.verify(target(host), "alice-old") is False


def test_rotate_as_the_main_account(host):
    driver = driver_for("SSH")
    driver.rotate(target(host, old="not-the-old-one", use_main=True), "alice-new-2")
    assert host.auth_attempts == ["root"]
    assert host.passwords == {"alice": "alice-new-2", "root": "root-password"}


def test_the_script_receives_every_value_intact_and_off_the_command_line(host):
    script = ("printf %s {{ .Password }} > new; printf %s {{.OldPassword}} > old\n"
              "printf %s {{ .Username }}@{{ .Address }}:{{ .Port }} > where\n")
    old = "old 'one' $(x)"
    SSHDriver().rotate(target(host, old=old, script=script, use_main=True), HOSTILE_PASSWORD)
    assert (host.home / "new").read_text() == HOSTILE_PASSWORD
    assert (host.home / "old").read_text() == old
    assert (host.home / "where").read_text() == f"alice@{host.address}:{host.port}"
    assert not (host.home / "pwned").exists()
    # the script went over stdin: no password in the command line other users could see
    assert len(host.commands) == 1 and "$(x)" not in host.commands[0] and "printf" not in host.commands[0]


def test_a_script_reading_stdin_gets_end_of_file_not_the_rest_of_the_script(host):
    script = "cat > seen\nprintf done > after\n"
    SSHDriver().rotate(target(host, script=script), "unused")
    assert (host.home / "seen").read_text() == ""
    assert (host.home / "after").read_text() == "done"


def test_a_failing_script_reports_its_status_only(host):
    script = "echo {{ .Password }}; echo {{ .Password }} {{ .OldPassword }} >&2\nexit 3\n"
    with pytest.raises(RotationFailed) as caught:
        SSHDriver().rotate(target(host, script=script), "alice-new-3")
    assert str(caught.value) == "script exited with status 3"
    assert caught.value.__cause__ is None


def test_a_lot_of_output_does_not_block_the_script(host):
    script = "head -c 3000000 /dev/zero | tr '\\0' x; head -c 3000000 /dev/zero >&2; echo {{ .Username }}:{{ .Password }} | chpasswd"
    SSHDriver().rotate(target(host, script=script), "alice-new-4")
    assert host.passwords["alice"] == "alice-new-4"


def test_a_script_that_hangs_is_cut_off(host):
    with pytest.raises(RotationFailed, match="did not finish within 0.5 seconds"):
        SSHDriver(script_timeout=0.5).rotate(target(host, script="sleep 5"), "x")


def test_wrong_old_password(host):
    with pytest.raises(RotationFailed) as caught:
        SSHDriver().rotate(target(host, old="wrong-old-password"), "alice-new-5")
    assert str(caught.value) == "authentication failed"
    assert host.passwords["alice"] == "alice-old"


def test_template_errors_and_missing_script(host):
    with pytest.raises(RotationFailed, match="script template error at position 5"):
        SSHDriver().rotate(target(host, script="echo {{ .Secret }}"), "x")
    with pytest.raises(RotationFailed, match="no script template"):
        SSHDriver().rotate(target(host, script=None), "x")
    assert host.commands == []


def test_host_keys_are_checked_unless_disabled(host, tmp_path):
    with pytest.raises(RotationFailed, match="not in known_hosts"):
        SSHDriver().rotate(target(host, options=None), "alice-new-6")
    with pytest.raises(RotationFailed, match="not in known_hosts"):
        SSHDriver().verify(target(host, options=None), "alice-old")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(host.known_hosts_line())
    SSHDriver().rotate(target(host, options=str(known_hosts)), "alice-new-6")
    assert host.passwords["alice"] == "alice-new-6"


def test_a_changed_host_key_is_refused(host, tmp_path):
    import paramiko

    other = paramiko.ECDSAKey.generate()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{host.address}]:{host.port} {other.get_name()} {other.get_base64()}\n")
    with pytest.raises(RotationFailed, match="does not match"):
        SSHDriver().rotate(target(host, options=str(known_hosts)), "alice-new-7")
    assert host.commands == []


def test_unreachable_port(host):
    # A target that is down is told from one that refused (issue 11), and nothing changed on it.
    with pytest.raises(TargetUnreachable, match="connection refused") as caught:
        SSHDriver().rotate(target(host, port=1), "x")
    assert caught.value.unchanged
    with pytest.raises(TargetUnreachable, match="connection refused"):
        SSHDriver().verify(target(host, port=1), "x")


def test_windows_scripts_go_as_an_encoded_powershell_command():
    import base64

    from secrets_manager_service.drivers.ssh import _command
    from secrets_manager_service.script_templates.rendering import render

    script = render("Set-LocalUser -Name {{ .Username }} -Password (ConvertTo-SecureString {{ .Password }} -AsPlainText -Force)",
                    {"Username": "admin", "Password": "it's ✓"}, "WINDOWS")
    command, stdin = _command(script, "WINDOWS")
    assert stdin is None
    assert command.startswith("powershell.exe -NoProfile -NonInteractive -EncodedCommand ")
    decoded = base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")
    assert decoded.endswith(script) and "'it''s ✓'" in decoded
