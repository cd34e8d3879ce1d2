"""The embedded target's function settings: short timeouts for every function, list overrides kept."""

from __future__ import annotations

from pipeline_toolkit.project import load_functions
from pipeline_toolkit.terraform import LOCAL_SETTINGS, local_function_settings


def test_every_function_gets_the_short_timeout() -> None:
    settings = local_function_settings()

    assert set(settings) == set(load_functions())
    assert all(values["timeout"] == LOCAL_SETTINGS["timeout"] for values in settings.values())


def test_a_raised_max_receive_count_in_the_list_is_kept() -> None:
    settings = local_function_settings()

    # The part loader's checkpointed parts may take several attempts, each spending one receive.
    assert (
        settings["part-loader"]["max_receive_count"]
        == load_functions()["part-loader"].settings["max_receive_count"]
    )
    assert settings["datalake-loader"]["max_receive_count"] == LOCAL_SETTINGS["max_receive_count"]
