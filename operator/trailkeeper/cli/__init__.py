"""The `trailkeeper` command line."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

# Every command's own settings, not only the group's: click keeps a command's help option once made, so a
# command first invoked on its own (a test, an embedding) would otherwise lose `-h` for good.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class LazyGroup(click.Group):
    """A group whose commands named in ``lazy`` ("name" -> "module:attribute") are imported when first
    asked for, click's documented pattern: a command with heavy imports of its own (`audit`) costs the
    start of the others nothing."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name not in self.commands:
            module, attribute = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)
