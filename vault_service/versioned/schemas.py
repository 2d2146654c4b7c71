"""Request and response shapes of the versioned API."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from common.durations import Duration, go_format
from common.schemas import BoundedList, Integer, RequestBody, StrictInteger
from common.timefmt import Rfc3339
from vault_service.secrets.schemas import SecretData, data_problem
from vault_service.versioned import password_spec

MAX_CUSTOM_METADATA_KEYS = 64
MAX_VERSIONS_LISTED = 1000  # version numbers one request may name (both protocols)
MAX_DESCRIPTION_LENGTH = 1024
HOUR, DAY = 3600, 86400
# Lockbox-style pending periods of schedule-destroy: long enough to notice a mistake, bounded.
MIN_PENDING_PERIOD, MAX_PENDING_PERIOD, DEFAULT_PENDING_PERIOD = HOUR, 30 * DAY, 7 * DAY
VERSION_STATUSES = ("ACTIVE", "DELETED", "SCHEDULED_FOR_DESTRUCTION", "DESTROYED")


class VersionArgs(Schema):
    version = Integer(validate=validate.Range(min=1))


class WriteOptions(RequestBody):
    cas = StrictInteger(validate=validate.Range(min=0))
    description = fields.String(load_default="", validate=validate.Length(max=MAX_DESCRIPTION_LENGTH))


def _punctuation(most: int):
    def check(value: str) -> None:
        if len(value) > most:
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: at most {most} characters")
        if set(value) - set(password_spec.PUNCTUATION) or len(set(value)) != len(value):
            raise ValidationError("VALUE_INCORRECT_FORMAT: distinct characters of the 32 punctuation characters "
                                  + password_spec.PUNCTUATION)
    return check


class PasswordPayloadSpecification(RequestBody):
    """Lockbox's: the server generates a password and stores it under password_key. Each
    include_* true means at least one character of that class; false leaves the class out."""

    password_key = fields.String(required=True, validate=validate.Regexp(password_spec.PASSWORD_KEY_PATTERN),
                                 metadata={"pattern": password_spec.PASSWORD_KEY_PATTERN})
    length = StrictInteger(load_default=password_spec.DEFAULT_LENGTH,
                           validate=validate.Range(min=1, max=password_spec.MAX_LENGTH))
    include_uppercase = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    include_lowercase = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    include_digits = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    include_punctuation = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    included_punctuation = fields.String(load_default="", validate=_punctuation(32),
                                         metadata={"maxLength": 32, "pattern": r"^[!-/:-@\[-`{-~]*$"})
    excluded_punctuation = fields.String(load_default="", validate=_punctuation(31),
                                         metadata={"maxLength": 31, "pattern": r"^[!-/:-@\[-`{-~]*$"})

    @validates_schema
    def _possible(self, spec, **kwargs):
        if {"password_key", "length", "included_punctuation", "excluded_punctuation"} - spec.keys():
            return  # a field failed already: that is the error
        found = password_spec.problem(spec)
        if found:
            prop, message = found
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: {message}", field_name=prop)


class WriteBody(RequestBody):
    """`data`, or a password to generate, or both (the password beside the data's keys)."""

    data = SecretData()
    options = fields.Nested(WriteOptions, load_default=lambda: {"description": ""})
    password_payload_specification = fields.Nested(PasswordPayloadSpecification)
    REQUIRED_ONE_OF = ("data", "password_payload_specification")

    def load(self, data, *, many=None, partial=None, unknown=None, **kwargs):
        # The body nearly every write sends, {"data": {...}} and nothing else, loads to this
        # without marshmallow's walk over the fields (about 130k instructions, a tenth of a
        # write: issue 25); anything else, or data the rule refuses, takes the full path, whose
        # answer (the result or the 400) this one equals. tests/vault/test_bad_input.py and
        # test_versioned.py send both kinds.
        if (type(data) is dict and len(data) == 1 and type(data.get("data")) is dict and many is None
                and partial is None and unknown is None and not kwargs and data_problem(data["data"]) is None):
            return {"data": data["data"], "options": {"description": ""}}
        return super().load(data, many=many, partial=partial, unknown=unknown, **kwargs)

    @validates_schema
    def _something_to_write(self, body, **kwargs):
        if "data" not in body and "password_payload_specification" not in body:
            raise ValidationError("REQUIRED_VALUE_MISSING: give data, password_payload_specification or both",
                                  field_name="data")
        key = body.get("password_payload_specification", {}).get("password_key")
        if key is not None and key in body.get("data", {}):
            raise ValidationError(f"VALUE_DUPLICATE: data already holds {key!r}, the password_key",
                                  field_name="data")


class VersionMeta(Schema):
    version = fields.Integer()
    created = Rfc3339()
    deletion_time = Rfc3339()
    destroyed = fields.Boolean()


class VersionDetail(Schema):
    version = fields.Integer()
    created = Rfc3339()
    created_by = fields.String()
    deletion_time = Rfc3339()
    destroyed = fields.Boolean()
    status = fields.String(metadata={"enum": list(VERSION_STATUSES)})
    destroy_at = Rfc3339(allow_none=True)
    description = fields.String()
    payload_entry_keys = fields.List(fields.String())
    password_payload_specification = fields.Nested(PasswordPayloadSpecification, allow_none=True)


class ReadResponse(Schema):
    data = fields.Dict()
    metadata = fields.Nested(VersionMeta)


class LiveVersion(Schema):
    version = fields.Integer()
    created = Rfc3339()
    data = fields.Dict()


class LiveVersions(Schema):
    """Every live version of a secret, newest first, with the secret's custom_metadata."""

    custom_metadata = fields.Dict()
    versions = fields.List(fields.Nested(LiveVersion))


class VersionsBody(RequestBody):
    versions = BoundedList(StrictInteger(validate=validate.Range(min=1)), max_items=MAX_VERSIONS_LISTED, required=True,
                           validate=validate.Length(min=1, error=f"VALUE_OUT_OF_BOUNDS: versions must list 1 to {MAX_VERSIONS_LISTED} version numbers"))


class ScheduleDestroyBody(VersionsBody):
    pending_period = Duration(load_default=DEFAULT_PENDING_PERIOD,
                              validate=validate.Range(min=MIN_PENDING_PERIOD, max=MAX_PENDING_PERIOD,
                                                      error="VALUE_OUT_OF_BOUNDS: pending_period must be 1h to 30 days"),
                              metadata={"description": "1h to 30 days (default 7 days); a zero duration means not set"})


class MetadataBody(RequestBody):
    max_versions = StrictInteger(validate=validate.Range(min=0, max=10000))
    delete_version_after = Duration()
    cas_required = fields.Boolean(truthy={True}, falsy={False})
    custom_metadata = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=128)),
                                  values=fields.String(validate=validate.Length(max=512)),
                                  metadata={"description": f"at most {MAX_CUSTOM_METADATA_KEYS} keys of 1 to 128 "
                                                           "characters (OpenAPI 3.0 cannot state a key's length)"})

    @validates("custom_metadata")
    def _bounded(self, value, **kwargs):
        if len(value) > MAX_CUSTOM_METADATA_KEYS:
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: custom_metadata may have at most {MAX_CUSTOM_METADATA_KEYS} keys")


class SecretSettings(Schema):
    created = Rfc3339()
    created_by = fields.String()
    updated = Rfc3339()
    updated_by = fields.String()
    current_version = fields.Integer()
    oldest_version = fields.Integer()
    max_versions = fields.Integer()
    delete_version_after = Duration(formatter=go_format)
    cas_required = fields.Boolean()
    custom_metadata = fields.Dict()


class MetadataResponse(Schema):
    metadata = fields.Nested(SecretSettings)
    versions = fields.List(fields.Nested(VersionDetail))


class KeysResponse(Schema):
    keys = fields.List(fields.String())


# 1 to 2147483647 (versions are int32), or "" for the first page, as a JSON Schema pattern
# for the OpenAPI document too.
PAGE_TOKEN_PATTERN = (r"^(?:|[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
                      r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])$")


class VersionPageArgs(Schema):
    page_size = Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    page_token = fields.String(validate=validate.Length(max=100), metadata={"pattern": PAGE_TOKEN_PATTERN})


class VersionPage(Schema):
    versions = fields.List(fields.Nested(VersionDetail))
    next_page_token = fields.String(allow_none=True)
