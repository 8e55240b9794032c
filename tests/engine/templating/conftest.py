"""Helpers for template tests: compile YAML text and run one message through it."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from engine.reply import Reply
from engine.templating import DictView, TemplateFieldError, TemplateRunner, parse_template


class FakeSessions:
    """Records engine calls and answers with preset replies (or raises)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, dict, dict]] = []
        self.replies: dict[str, Any] = {}

    def _answer(self, method: str, fields: Any, opts: Any, **kw: Any) -> Reply:
        self.calls.append((method, dict(fields), dict(opts or {}), kw))
        answer = self.replies.get(method, Reply(max_usage=0))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def authorize(self, fields, opts=None):
        return self._answer("authorize", fields, opts)

    async def initiate(self, fields, opts=None, link=None):
        return self._answer("initiate", fields, opts, link=link)

    async def update(self, fields, opts=None):
        return self._answer("update", fields, opts)

    async def terminate(self, fields, opts=None):
        return self._answer("terminate", fields, opts)

    async def process_message(self, fields, opts=None, *, debit=True):
        return self._answer("process_message", fields, opts, debit=debit)

    async def process_cdr(self, fields, opts=None):
        return self._answer("process_cdr", fields, opts)


@pytest.fixture
def sessions() -> FakeSessions:
    return FakeSessions()


def compile_yaml(text: str, agent: str | None = None):
    return parse_template(textwrap.dedent(text), agent, file="t.yaml")


@pytest.fixture
def tpl():
    return compile_yaml


async def run_fields(request_fields: str, message: dict, vars: dict | None = None,
                     reply_fields: str = "[]", flags: str = "[*none]"):
    """One processor with the given field lists (YAML flow/block text), dry-run."""
    text = (
        "processors:\n  - id: P\n    flags: " + flags + "\n    request_fields:\n"
        + textwrap.indent(textwrap.dedent(request_fields).strip() or "[]", "      ") + "\n"
        + "    reply_fields:\n" + textwrap.indent(textwrap.dedent(reply_fields).strip(), "      ")
        + "\n"
    )
    template = parse_template(text, file="t.yaml")
    runner = TemplateRunner(template, None)
    # The same fields through an agent-written view (generic paths, no dict fast paths)
    # must give the same result as through DictView (generated straight-line code).
    try:
        other = await runner.run(AgentView(message), dict(vars or {}))
    except TemplateFieldError as err:
        other = err
    outcome = await runner.run(DictView(message), dict(vars or {}))
    assert not isinstance(other, Exception), other
    assert (other.request, other.opts, other.reply_tree) == (
        outcome.request, outcome.opts, outcome.reply_tree)
    return outcome


class AgentView:
    """A view as an agent would write it (not a DictView)."""

    def __init__(self, data: Any) -> None:
        self._inner = DictView(data)

    def values(self, path):
        return self._inner.values(path)

    def children(self, path):
        return [AgentView(c.data) for c in self._inner.children(path)]


@pytest.fixture
def fields():
    return run_fields
