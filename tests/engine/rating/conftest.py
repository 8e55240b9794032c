"""Fixtures for rating tests (helpers live in ratinghelpers.py)."""

from pathlib import Path

import pytest

from tests.engine.rating.ratinghelpers import PlanBuilder, plan_builder


@pytest.fixture
def build_plan(tmp_path: Path) -> PlanBuilder:
    return plan_builder(tmp_path)
