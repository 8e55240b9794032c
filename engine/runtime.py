"""What a running agent gets from the composition root: the engine, config and paths.

Lives in the engine so agents can type against it without importing the
composition root (dependencies point agents -> engine only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol


class RunningService(Protocol):
    """Anything ``start`` returns: the composition root stops it on shutdown."""

    async def stop(self) -> None: ...


@dataclass
class AgentContext:
    """Handed to ``agents.<name>.service.start(ctx, section)``.

    ``sessions`` is the engine's ``SessionManager``; ``accounts`` the
    ``AccountService``; ``rater()`` returns the current ``Rater`` (it changes
    when a tariff plan is reloaded). ``config`` is the whole merged config
    mapping; ``section`` passed to ``start`` is the agent's own part of it.
    """

    sessions: Any
    accounts: Any
    rater: Callable[[], Any]
    storage: Any
    config: dict[str, Any]
    root_dir: Path
    data_dir: Path
    templates_dir: Path
    extras: dict[str, Any] = field(default_factory=dict)

    def template_path(self, name_or_path: str) -> Path:
        """Resolve a template reference: absolute/relative path, or a name in templates/."""
        candidate = Path(name_or_path)
        if candidate.is_absolute() and candidate.exists():
            return candidate
        for base in (Path.cwd(), self.root_dir, self.templates_dir):
            path = base / name_or_path
            if path.exists():
                return path
        return self.templates_dir / name_or_path


ServiceStarter = Callable[[AgentContext, dict], Awaitable[RunningService]]
