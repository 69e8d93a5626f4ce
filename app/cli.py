"""The `drip-bridge` command line.

A Flask CLI group: each part of the app registers its own commands in its
`init_app`; `demo` needs no configuration, so it hangs on the group itself.

Help and `--version` need no configuration: when the environment is incomplete,
the commands are listed from an app built only to describe them. Running one
still loads the configured app, so a bad setting stops it with one line.
"""

from __future__ import annotations

import functools
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from app import __version__
from app.config import Config, ConfigError
from app.demo import demo
from app.factory import create_app

# FlaskGroup's own options make no sense here: the app is always create_app(),
# debug mode is never wanted, and `--env-file` needs python-dotenv (not installed).
FLASK_OPTIONS = frozenset({"env_file", "app", "debug"})


@functools.cache
def described_app() -> Flask:
    """An app that only lists commands and their help; never run, never connected."""
    return create_app(
        Config(drip_account_id="0000000", drip_api_token="-", database_url="sqlite://")
    )


class BridgeGroup(FlaskGroup):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.params = [p for p in self.params if p.name not in FLASK_OPTIONS]

    def app_commands(self, ctx: click.Context) -> click.Group:
        try:
            return ctx.ensure_object(ScriptInfo).load_app().cli
        except ConfigError:
            return described_app().cli

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        own = click.Group.get_command(self, ctx, name)
        return own or self.app_commands(ctx).get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = click.Group.list_commands(self, ctx)
        return sorted({*own, *self.app_commands(ctx).list_commands(ctx)})


cli = BridgeGroup(
    name="drip-bridge",
    create_app=create_app,
    add_default_commands=False,
    add_version_option=False,
    set_debug_flag=False,
    load_dotenv=False,
    help="Segment <-> Drip bridge.",
)
cli.add_command(demo)
version = click.version_option(__version__, prog_name="drip-bridge", message="%(prog)s %(version)s")
version(cli)


def main() -> None:
    """Console script: a bad setting is one line on stderr and exit status 2."""
    try:
        cli.main(prog_name="drip-bridge")
    except ConfigError as exc:
        click.echo(f"drip-bridge: {exc}", err=True)
        sys.exit(2)
