"""Configuration from the environment fails at cold start with the variable's name."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, DatabaseSettings, DatalakeSettings
from pipeline.datasets import DATASETS


def test_datalake_settings_read_from_env() -> None:
    env = {"PIPELINE_DATALAKE_BUCKET": "p-dev-datalake", "PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine"}
    settings = DatalakeSettings.from_env(env)
    assert settings.datalake_bucket == "p-dev-datalake"


def test_missing_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="PIPELINE_DATALAKE_BUCKET is not set"):
        DatalakeSettings.from_env({"PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine"})


def test_bad_bucket_name_is_named() -> None:
    env = {"PIPELINE_DATALAKE_BUCKET": "Bad_Bucket", "PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine"}
    with pytest.raises(ConfigError, match="PIPELINE_DATALAKE_BUCKET='Bad_Bucket' is not a valid"):
        DatalakeSettings.from_env(env)


def test_database_settings_map_each_dataset_to_its_table() -> None:
    env = {
        "PIPELINE_USERS_TABLE": "p-dev-users",
        "PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine",
        "PIPELINE_DATALAKE_BUCKET": "p-dev-datalake",
    }
    settings = DatabaseSettings.from_env(DATASETS, env)
    assert settings.tables == {"users": "p-dev-users"}  # events have a schema but no table
    assert settings.datalake_bucket == "p-dev-datalake"
    assert settings.batch_size == 1000


def test_database_settings_need_the_lake_bucket_for_the_curated_zone() -> None:
    env = {"PIPELINE_USERS_TABLE": "p-dev-users", "PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine"}
    with pytest.raises(ConfigError, match="PIPELINE_DATALAKE_BUCKET is not set"):
        DatabaseSettings.from_env(DATASETS, env)


def test_database_settings_need_the_table() -> None:
    with pytest.raises(ConfigError, match="PIPELINE_USERS_TABLE is not set"):
        DatabaseSettings.from_env(
            DATASETS,
            {"PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine", "PIPELINE_DATALAKE_BUCKET": "p-dev-datalake"},
        )


def test_strict_ordering_is_a_checked_flag() -> None:
    env = {
        "PIPELINE_USERS_TABLE": "p-dev-users",
        "PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine",
        "PIPELINE_DATALAKE_BUCKET": "p-dev-datalake",
    }
    assert not DatabaseSettings.from_env(DATASETS, env).strict_ordering
    assert DatabaseSettings.from_env(DATASETS, {**env, "PIPELINE_STRICT_ORDERING": "True"}).strict_ordering
    with pytest.raises(ConfigError, match="PIPELINE_STRICT_ORDERING='maybe' must be true or false"):
        DatabaseSettings.from_env(DATASETS, {**env, "PIPELINE_STRICT_ORDERING": "maybe"})


def test_numeric_tuning_variables_are_checked() -> None:
    env = {
        "PIPELINE_USERS_TABLE": "p-dev-users",
        "PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine",
        "PIPELINE_DATALAKE_BUCKET": "p-dev-datalake",
        "PIPELINE_WRITE_THREADS": "zero",
    }
    with pytest.raises(ConfigError, match="PIPELINE_WRITE_THREADS='zero' must be a whole number"):
        DatabaseSettings.from_env(DATASETS, env)
