"""driver_for, Target's repr, and the NONE driver."""
from __future__ import annotations

import pytest

from secrets_manager_service.drivers import Driver, Target
from secrets_manager_service.drivers.registry import driver_for


def make_target(**overrides) -> Target:
    fields = dict(address="db.example.com", port=5432, account="app", old_password="old-secret-1",
                  main_account="admin", main_password="main-secret-2", use_main_account=False,
                  script="echo {{ .Password }}", operating_system="LINUX", certificate_validation_options=None)
    return Target(**{**fields, **overrides})


@pytest.mark.parametrize("protocol", ["POSTGRESQL", "SSH", "NONE"])
def test_driver_for_known_protocols(protocol):
    assert isinstance(driver_for(protocol), Driver)


@pytest.mark.parametrize("protocol", ["RDP", "postgresql", ""])
def test_driver_for_unknown_protocols(protocol):
    with pytest.raises(ValueError, match="unknown protocol"):
        driver_for(protocol)


def test_target_repr_hides_passwords():
    target = make_target()
    for text in (repr(target), str(target), f"{target}", repr([target])):
        assert "old-secret-1" not in text and "main-secret-2" not in text
        assert "db.example.com" in text and "'***'" in text
    assert "old_password=None" in repr(make_target(old_password=None))


def test_target_is_frozen():
    with pytest.raises(AttributeError):
        make_target().old_password = "x"


def test_none_driver():
    driver = driver_for("NONE")
    assert driver.rotate(make_target(), "new") is None
    assert driver.verify(make_target(), "anything") is True
