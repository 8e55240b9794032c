"""``chargeway template``: explain what a template does with a message; import CGRateS processors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from engine.templating import TemplateError, load_template

DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@click.group("template")
def template_group() -> None:
    """Check, explain and import agent templates (templates/README.md)."""


def _template_path(agent: str, template: Path | None) -> Path:
    if template is not None:
        return template
    for base in (Path.cwd() / "templates", DEFAULT_TEMPLATES):
        candidate = base / f"{agent}.yaml"
        if candidate.exists():
            return candidate
    raise click.ClickException(f"no template for agent {agent!r}: looked for templates/{agent}.yaml; "
                               "pass --template PATH")


@template_group.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agent", default=None, help="Agent the template must be for.")
def check(path: Path, agent: str | None) -> None:
    """Load and compile a template; print its processors or the first error (file:line)."""
    try:
        template = load_template(path, agent=agent)
    except TemplateError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{path}: ok, agent {template.agent or '-'}, {len(template.processors)} processors")
    for proc in template.processors:
        flags = " ".join(sorted(proc.flags)) or "*none"
        click.echo(f"  {proc.id:<24} {flags}  ({len(proc.filters)} filters, "
                   f"{len(proc.request_fields)} request / {len(proc.reply_fields)} reply fields)")


@template_group.command("explain")
@click.option("--agent", required=True, help="Agent name: diameter, radius, kamailio, ...")
@click.option("--message", "message", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Captured message (the agent's format, or JSON {req, vars}).")
@click.option("--template", "template_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Template file (default templates/<agent>.yaml).")
@click.option("--dry-run/--live", "dry_run", default=True,
              help="Default --dry-run: never calls the engine. --live sends the request to the "
                   "engine of --config (balances change).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Config for --live.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory of the engine for --live (default as chargeway serve).")
@click.option("--var", "extra_vars", multiple=True, metavar="NAME=VALUE",
              help="Set or override a template variable (e.g. --var RemoteHost=10.0.0.1).")
def explain_command(agent: str, message: Path, template_path: Path | None, dry_run: bool,
                    config_path: Path | None, data_dir: Path | None,
                    extra_vars: tuple[str, ...]) -> None:
    """Show which processor matches MESSAGE, every field it produces, the engine call and the reply."""
    from engine.templating.explain import explain, load_message, render

    path = _template_path(agent, template_path)
    try:
        template = load_template(path, agent=agent)
    except TemplateError as err:
        raise click.ClickException(str(err)) from None
    try:
        view, variables = load_message(agent, message)
    except (ValueError, OSError) as err:
        raise click.ClickException(f"cannot read message: {err}") from None
    for item in extra_vars:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--var")
        variables[name] = value

    async def run() -> tuple[Any, Any, Any]:
        if dry_run:
            return await explain(template, view, variables)
        from chargeway.app import Gateway
        from chargeway.config import ConfigError, load_config
        try:
            config = load_config(config_path, data_dir)
        except ConfigError as err:
            raise click.ClickException(str(err)) from None
        gateway = Gateway(config)
        await gateway.start_engine()
        try:
            return await explain(template, view, variables, sessions=gateway.sessions)
        finally:
            await gateway.stop()

    outcome, trace, error = asyncio.run(run())
    click.echo(render(template, str(message), variables, outcome, trace, error, live=not dry_run),
               nl=False)
    if error is not None or outcome is None or not outcome.matched:
        raise SystemExit(1)


@template_group.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agent", default=None, help="Which agent's processors (diameter, radius ...).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML here (default: stdout).")
def import_command(source: Path, agent: str | None, output: Path | None) -> None:
    """Convert CGRateS request_processors (JSON, comments allowed) into a chargeway template."""
    from engine.templating.cgrates_import import import_cgrates

    try:
        text, warnings = import_cgrates(source, agent)
    except TemplateError as err:
        raise click.ClickException(str(err)) from None
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
