"""A real chargeway (engine + Diameter agent on an ephemeral port) for the Diameter tests."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from tests.agents.diameter.engine_rig import Rig, start_rig, stop_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await start_rig(tmp_path)
    try:
        yield rig
    finally:
        await stop_rig(rig)
