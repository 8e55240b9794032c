"""``load_template(path, agent=...)``: read, check and compile a template file once.

YAML is our format; a ``.json`` file is taken as a CGRateS agent config (or bare
``request_processors``) and converted on the fly, so CGRateS processors load as is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.templating.compiler import Template, compile_template
from engine.templating.source import read_source

log = logging.getLogger("chargeway.templates")


def load_template(path: str | Path, agent: str | None = None) -> Template:
    """Compile ``path``; ``TemplateError(file, line, reason)`` if anything is wrong."""
    file = str(path)
    src = read_source(path)
    if file.lower().endswith(".json"):
        from engine.templating.cgrates_import import from_cgrates
        warnings: list[str] = []
        src = from_cgrates(src, file, agent, warnings)
        for warning in warnings:
            log.warning("%s: %s", file, warning)
    return _prepared(compile_template(src, file, agent))


def _prepared(template: Template) -> Template:
    from engine.templating.runner import prepare
    prepare(template)
    return template


def parse_template(text: str, agent: str | None = None, *, file: str = "<template>") -> Template:
    """Compile YAML text (tests, templates embedded in config)."""
    from engine.templating.source import parse_yaml
    return _prepared(compile_template(parse_yaml(text, file), file, agent))
