"""The template language every agent uses to map its protocol to the engine and back.

See templates/README.md for the syntax. Public API::

    template = load_template(path, agent="diameter")     # TemplateError(file, line, reason)
    runner = TemplateRunner(template, sessions)           # sessions None: dry-run only
    outcome = await runner.run(view, vars, dry_run=False) # Outcome
"""

from engine.templating.compiler import Processor, Template
from engine.templating.errors import TemplateError, TemplateFieldError
from engine.templating.loader import load_template, parse_template
from engine.templating.replybuilder import ReplyBuilder, ReplyItem
from engine.templating.runner import Outcome, TemplateRunner
from engine.templating.view import DictView, MessageView

__all__ = [
    "DictView", "MessageView", "Outcome", "Processor", "ReplyBuilder", "ReplyItem", "Template",
    "TemplateError", "TemplateFieldError", "TemplateRunner", "load_template", "parse_template",
]
