"""The users schema: accepted spellings, normalisation, and what it refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.schemas import SCHEMAS, UserRecord

GOOD = {"user_id": "u1", "email": "ann@example.com"}


def messages(data: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        UserRecord.model_validate(data)
    return [(".".join(map(str, error["loc"])), error["msg"]) for error in caught.value.errors()]


def test_registry_names_the_users_schema() -> None:
    assert SCHEMAS["users"] is UserRecord


def test_article_column_names_and_snake_case_names_give_the_same_record() -> None:
    article = {
        "UserId": "u1",
        "FirstName": "Ann",
        "LastName": "Lee",
        "Email": "ann@example.com",
        "Gender": "F",
        "Age": "42",
    }
    snake = {
        "user_id": "u1",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "gender": "F",
        "age": 42,
    }
    assert UserRecord.model_validate(article) == UserRecord.model_validate(snake)


def test_values_are_trimmed_and_email_lowercased() -> None:
    record = UserRecord.model_validate(
        {"user_id": "  u1 ", "first_name": " Ann\t", "email": "  Ann.Lee@Example.COM ", "gender": " F "}
    )
    assert (record.user_id, record.first_name, record.email, record.gender) == (
        "u1",
        "Ann",
        "ann.lee@example.com",
        "F",
    )


def test_only_user_id_and_email_are_required() -> None:
    record = UserRecord.model_validate(GOOD)
    assert (record.first_name, record.last_name, record.gender, record.age) == (None, None, None, None)
    assert UserRecord.model_validate({**GOOD, "gender": "", "first_name": None}).gender == ""


@pytest.mark.parametrize(
    ("value", "expected"), [(42, 42), ("42", 42), (" 7 ", 7), (42.0, 42), (0, 0), ("150", 150)]
)
def test_age_accepts_whole_numbers_from_json_or_text(value: object, expected: int) -> None:
    assert UserRecord.model_validate({**GOOD, "age": value}).age == expected


@pytest.mark.parametrize("value", ["42.5", 42.5, "abc", "", True, False, -1, 151, "1e2", [42]])
def test_age_refuses_anything_else(value: object) -> None:
    assert messages({**GOOD, "age": value}) == [("age", "must be an integer between 0 and 150")]


@pytest.mark.parametrize(
    "email",
    ["plain", "a@b", "a@@b.cc", "a b@c.de", "a@b..cc", "a@.b.cc", "@b.cc", "a@b.cc.", "x" * 250 + "@b.cc"],
)
def test_email_shape_is_checked(email: str) -> None:
    assert messages({**GOOD, "email": email}) == [("email", "value is not a valid email address")]


@pytest.mark.parametrize("email", ["a@b.cc", "first.last+tag@sub.example.co.uk", "o'brien@example.ie"])
def test_plausible_emails_pass(email: str) -> None:
    assert UserRecord.model_validate({**GOOD, "email": email}).email == email


@pytest.mark.parametrize("user_id", ["", "   ", None, True, "x" * 257])
def test_user_id_must_be_a_non_empty_string(user_id: object) -> None:
    assert messages({**GOOD, "user_id": user_id}) == [
        ("user_id", "must be a non-empty string of at most 256 characters")
    ]


def test_a_numeric_json_user_id_is_taken_as_its_text() -> None:
    assert UserRecord.model_validate({**GOOD, "user_id": 1234}).user_id == "1234"


def test_unknown_fields_and_missing_required_fields_are_refused() -> None:
    assert messages({"first_name": "Ann", "country": "IE"}) == [
        ("UserId", "Field required"),
        ("Email", "Field required"),
        ("country", "Extra inputs are not permitted"),
    ]
