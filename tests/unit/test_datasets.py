"""The dataset registry: which keys go where."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from pipeline.datasets import DATASETS, UNCLASSIFIED, USERS, Dataset, route


@pytest.mark.parametrize(
    "key",
    [
        "users.csv",
        "uploads/2026/users-2026-11.csv",
        "USERS_big.CSV",
        "users.jsonl",
        "users.json.gz",
        "a b/users 1.csv",
    ],
)
def test_user_files_route_to_users(key: str) -> None:
    assert route(key) is USERS


@pytest.mark.parametrize("key", ["orders.csv", "report.pdf", "users", "my-users.csv", "", "folder/"])
def test_unknown_keys_are_unclassified_not_errors(key: str) -> None:
    assert route(key) is UNCLASSIFIED
    assert not UNCLASSIFIED.loads_database


def test_events_have_a_schema_but_no_table() -> None:
    dataset = route("events-2026-11-22.jsonl")
    assert dataset.name == "events"
    assert dataset.loads_database  # validated by the database loader: rejects, curated zone
    assert not dataset.has_table
    assert USERS.has_table


def test_prefix_restricts_a_dataset_and_first_match_wins() -> None:
    class Row(BaseModel):
        id: str

    partners = Dataset(
        "partners",
        patterns=("*.csv",),
        prefix="partners/",
        schema=Row,
        key_field="id",
        table_env="T",
        columns=(("id", "string"),),
    )
    registry = (partners, *DATASETS)
    assert route("partners/users.csv", registry) is partners
    assert route("other/users.csv", registry) is USERS


def test_a_schema_without_key_or_columns_is_a_declaration_error() -> None:
    class Row(BaseModel):
        id: str

    with pytest.raises(ValueError, match="needs a key_field and curated columns"):
        Dataset("broken", patterns=("*.csv",), schema=Row)
    with pytest.raises(ValueError, match="needs a key_field and curated columns"):
        Dataset("broken", patterns=("*.csv",), schema=Row, key_field="id")
    with pytest.raises(ValueError, match="columns must name key_field once"):
        Dataset("broken", patterns=("*.csv",), schema=Row, key_field="id", columns=(("other", "string"),))
    with pytest.raises(ValueError, match="needs a schema"):
        Dataset("broken", patterns=("*.csv",), table_env="T")


def test_a_schema_without_a_table_is_allowed() -> None:
    class Row(BaseModel):
        id: str

    dataset = Dataset(
        "clicks", patterns=("*.jsonl",), schema=Row, key_field="id", columns=(("id", "string"),)
    )
    assert dataset.loads_database
    assert not dataset.has_table
