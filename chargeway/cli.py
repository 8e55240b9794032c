"""The ``chargeway`` command line: serve, load, cost, console, template, bench."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from chargeway.config import ConfigError, load_config

CONFIG_OPTION = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                             default=None, help="YAML config merged over config/chargeway.yaml.")
DATA_DIR_OPTION = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                               help="Where storage lives (default ./data or $CHARGEWAY_DATA_DIR).")


def run_async(coro_factory) -> object:
    """Run on uvloop when installed and enabled (Linux), else on asyncio's default loop."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return asyncio.run(coro_factory())
    return uvloop.run(coro_factory())


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@click.group()
@click.version_option(package_name="chargeway")
def main() -> None:
    """chargeway: real-time charging gateway (CGRateS-compatible)."""


@main.command()
@CONFIG_OPTION
@DATA_DIR_OPTION
def serve(config_path: Path | None, data_dir: Path | None) -> None:
    """Start the gateway: engine, API and the agents enabled in the config."""
    try:
        config = load_config(config_path, data_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    general = config.section("general")
    _setup_logging(str(general.get("log_level", "info")))
    from chargeway.app import Gateway, tune_gc
    from chargeway.gc_policy import POLICIES

    gc_policy = str(general.get("gc", "timed"))
    if gc_policy not in POLICIES:
        raise click.ClickException(f"general.gc must be one of {', '.join(POLICIES)}, not {gc_policy!r}")

    async def run() -> None:
        gateway = Gateway(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await gateway.start()
        except BaseException:
            # An agent that cannot start (port taken, bad template) must not leave the
            # engine half-open: flush storage and report the cause.
            await gateway.stop()
            raise
        tune_gc(gc_policy)
        logging.getLogger("chargeway").info("chargeway serving (data dir %s)", config.data_dir)
        print("chargeway ready", flush=True)
        try:
            await stop.wait()
        finally:
            await gateway.stop()

    if general.get("uvloop", True):
        run_async(run)
    else:
        asyncio.run(run())


@main.command()
@click.option("--tpdir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with CGRateS-format tariff-plan CSV files.")
@click.option("--dry-run", is_flag=True, help="Validate only; store nothing.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def load(tpdir: Path, dry_run: bool, config_path: Path | None, data_dir: Path | None) -> None:
    """Validate and load a tariff plan (all or nothing) into the data dir."""
    from rich.progress import Progress

    from chargeway.app import Gateway
    from engine.tariffplan.loader import TariffPlanError

    try:
        config = load_config(config_path, data_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    config.raw.setdefault("tariffplan", {})["load_on_start"] = "never"

    async def run() -> None:
        gateway = Gateway(config)
        with Progress(transient=True) as progress:
            tasks: dict[str, int] = {}

            def report(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total or None)
                progress.update(tasks[name], completed=done, total=total or None)

            if dry_run:
                plan = await gateway.load_tariffplan(str(tpdir), dry_run=True, progress=report)
            else:
                await gateway.start_engine()
                try:
                    plan = await gateway.load_tariffplan(str(tpdir), progress=report)
                finally:
                    await gateway.stop()
        click.echo(f"{'validated' if dry_run else 'loaded'} {tpdir}: {plan.summary()}")

    try:
        asyncio.run(run())
    except TariffPlanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _stored_or_configured_plan(tpdir: Path | None):
    """Plan for ``chargeway cost``: --tpdir, else the plan stored in the data dir, else config's folder."""
    from engine.tariffplan.loader import load_tariffplan
    from engine.tariffplan.model import TariffPlan

    if tpdir is not None:
        return load_tariffplan(tpdir)
    config = load_config(None, None)
    if (config.data_dir / "chargeway.db").exists():
        from engine.storage import open_storage

        async def read() -> bytes | None:
            storage = open_storage(config.data_dir)
            await storage.open()
            try:
                return await storage.load_tariffplan()
            finally:
                await storage.close()

        blob = asyncio.run(read())
        if blob:
            return TariffPlan.from_bytes(blob)
    return load_tariffplan(config.resolve_path(config.section("tariffplan").get("folder", "config/tariffplan")))


def _register_commands() -> None:
    from chargeway.commands.console import console_command
    from chargeway.commands.cost import make_cost_command
    from chargeway.commands.template import template_group

    main.add_command(make_cost_command(_stored_or_configured_plan))
    main.add_command(console_command)
    main.add_command(template_group)


_register_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
