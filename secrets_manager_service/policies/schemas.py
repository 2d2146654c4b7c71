"""Request and response shapes of password policies."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from common.durations import Duration
from common.schemas import PageArgs
from common.timefmt import Rfc3339
from secrets_manager_service import passwords
from secrets_manager_service.fields import EchoTolerant, StrictBoolean, StrictInteger, listing_of

MAX_PASSWORD_LENGTH = 1024
# Each kept version is one Vault read at checkout time, so the history is bounded.
MAX_VERSIONS = 100
DAY = 86400


class PasswordPolicyBody(EchoTolerant):
    """A policy as POST and PUT take it; omitted settings get the defaults."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=256))
    rotation_interval = Duration(load_default=30 * DAY)
    password_min_length = StrictInteger(load_default=16, validate=validate.Range(min=1, max=MAX_PASSWORD_LENGTH),
                                        metadata={"description": "At most password_max_length, and at least the number "
                                                                 "of enabled character classes (one at least)."})
    password_max_length = StrictInteger(load_default=32, validate=validate.Range(min=1, max=MAX_PASSWORD_LENGTH))
    use_special_characters = StrictBoolean(load_default=True)
    use_lower_case = StrictBoolean(load_default=True)
    use_upper_case = StrictBoolean(load_default=True)
    use_numbers = StrictBoolean(load_default=True)
    max_versions = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_VERSIONS))
    number_of_retries = StrictInteger(load_default=3, validate=validate.Range(min=0, max=100))
    retry_interval = Duration(load_default=300)
    max_concurrent_checkouts = StrictInteger(load_default=0, validate=validate.Range(min=0, max=100_000))
    max_checkout_duration = Duration(load_default=3600, validate=validate.Range(min=1),
                                     metadata={"description": "A zero duration means not set (PT1H), as a Go "
                                                              "client's zero value does."})
    rotate_on_release = StrictBoolean(load_default=False)
    verify_after_rotation = StrictBoolean(load_default=False)

    @validates_schema
    def _passwords_possible(self, data, **kwargs):
        try:
            passwords.check_policy(data)
        except ValueError as exc:
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: {exc}", field_name="password_min_length") from None


class PasswordPolicy(Schema):
    id = fields.UUID()
    name = fields.String()
    rotation_interval = Duration()
    password_min_length = fields.Integer()
    password_max_length = fields.Integer()
    use_special_characters = fields.Boolean()
    use_lower_case = fields.Boolean()
    use_upper_case = fields.Boolean()
    use_numbers = fields.Boolean()
    max_versions = fields.Integer()
    number_of_retries = fields.Integer()
    retry_interval = Duration()
    max_concurrent_checkouts = fields.Integer()
    max_checkout_duration = Duration()
    rotate_on_release = fields.Boolean()
    verify_after_rotation = fields.Boolean()
    created = Rfc3339()
    updated = Rfc3339()
    created_by = fields.String()
    updated_by = fields.String()


PasswordPolicyList = listing_of(PasswordPolicy, "PasswordPolicyList")

PolicyPageArgs = PageArgs
