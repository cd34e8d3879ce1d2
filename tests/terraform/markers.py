"""Markers the Terraform tests share."""

from __future__ import annotations

import pytest

from pipeline_toolkit.terraform import find_binary

# The suite's machines have terraform (.ci/run checks); a checkout without it still runs everything else.
needs_terraform = pytest.mark.skipif(find_binary() is None, reason="the terraform binary is not on PATH")
