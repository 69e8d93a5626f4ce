"""The `drip-bridge` command line.

A Flask CLI group: each part of the app registers its own commands in its
`init_app`; `demo` needs no configuration, so it hangs on the group itself.
"""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from app.config import ConfigError
from app.demo import demo
from app.factory import create_app

cli = FlaskGroup(
    name="drip-bridge",
    create_app=create_app,
    add_default_commands=False,
    add_version_option=False,
    set_debug_flag=False,
    load_dotenv=False,
    help="Segment <-> Drip bridge.",
)
cli.add_command(demo)


def main() -> None:
    """Console script: a bad setting is one line on stderr and exit status 2."""
    try:
        cli.main(prog_name="drip-bridge")
    except ConfigError as exc:
        click.echo(f"drip-bridge: {exc}", err=True)
        sys.exit(2)
