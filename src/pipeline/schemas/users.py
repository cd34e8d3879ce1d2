"""The ``users`` record: the user table of the source articles.

Accepted column names: the snake_case field names, or the original article's ``UserId, FirstName,
LastName, Email, Gender, Age`` (either spelling per record, not both for one field), matched ignoring case,
surrounding spaces and a BOM. Unknown fields are rejected: the collector polices the schema rather than
silently dropping data (the ``users`` contract in :mod:`pipeline.datasets` is ``reject``; another dataset's
may ``ignore`` or ``keep`` them).

What is required and what is optional:

- ``user_id`` (required, the table's key): trimmed, 1-256 characters; a JSON number is taken as its text.
- ``email`` (required): trimmed, lowercased, ``local@domain.tld`` shape, at most 254 characters.
- ``first_name``, ``last_name`` (optional, up to 256 characters) and ``gender`` (optional, free text up to
  64 characters): trimmed; an empty value is the same as no value.
- ``age`` (optional): a whole number 0-150, given as a JSON number (``42``, ``42.0``) or as text (``"42"``,
  as every CSV cell is); ``42.5``, ``"abc"`` and booleans are refused.

In CSV an empty cell means "no value" (CSV cannot tell empty from missing), so an empty ``age`` cell is fine
and an empty ``user_id`` cell is a rejected record. In JSON, ``null`` is "no value".

Every check is a compiled pydantic-core constraint: no Python code runs per record while validating.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import CoreSchema, core_schema


class Message:
    """Replace whatever pydantic says about a bad value with one sentence a person can act on."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.custom_error_schema(
            handler(source), custom_error_type="invalid_value", custom_error_message=self.message
        )


class WholeNumber:
    """An integer in [ge, le] from a JSON integer, an integral float, or text such as a CSV cell.

    Plain lax ``int`` would also take ``True`` as 1; this union of strict branches does not, and stays
    compiled: strict int | (strict str -> int) | (strict float -> int).
    """

    def __init__(self, ge: int, le: int) -> None:
        self.ge, self.le = ge, le

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        ranged = core_schema.int_schema(ge=self.ge, le=self.le)
        return core_schema.union_schema(
            [
                core_schema.int_schema(ge=self.ge, le=self.le, strict=True),
                core_schema.chain_schema(
                    [core_schema.str_schema(strict=True, strip_whitespace=True), ranged]
                ),
                core_schema.chain_schema([core_schema.float_schema(strict=True), ranged]),
            ],
            mode="left_to_right",
            custom_error_type="invalid_value",
            custom_error_message=f"must be an integer between {self.ge} and {self.le}",
        )


# A pragmatic shape check (one @, a dot in the domain, no spaces): deliverability is not knowable here.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$"

UserId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    Message("must be a non-empty string of at most 256 characters"),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=EMAIL_PATTERN),
    Message("value is not a valid email address"),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=256),
    Message("must be a string of at most 256 characters"),
]
Gender = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=64),
    Message("must be a string of at most 64 characters"),
]
Age = Annotated[int, WholeNumber(0, 150)]


class UserRecord(BaseModel):
    """One user. Field names are the DynamoDB attribute names; aliases are the article's column names."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    user_id: UserId = Field(alias="UserId", coerce_numbers_to_str=True)  # JSON ids may be numbers
    first_name: Name | None = Field(default=None, alias="FirstName")
    last_name: Name | None = Field(default=None, alias="LastName")
    email: Email = Field(alias="Email")
    gender: Gender | None = Field(default=None, alias="Gender")
    age: Age | None = Field(default=None, alias="Age")
