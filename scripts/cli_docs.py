"""Refresh the `--help` blocks of docs/cli.md from the commands themselves: `python scripts/cli_docs.py`.

Each block to refresh follows a marker line `<!-- help: trailkeeper <command> -->` and is a ```text fence;
everything else in the page is written by hand. tests/test_docs.py fails when a block differs from the
help the code prints, so the page cannot go stale unnoticed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from trailkeeper.cli.main import cli

CLI_MD = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
# Click wraps help to the terminal: a fixed width makes the page the same on every machine.
WIDTH = 78
_BLOCK = re.compile(r"(<!-- help: trailkeeper(?P<command>[^>]*?) -->\n```text\n)(?P<help>.*?)(```)", re.S)


def help_text(command: str) -> str:
    args = [*command.split(), "--help"]
    result = CliRunner().invoke(cli, args, prog_name="trailkeeper", terminal_width=WIDTH)
    if result.exit_code != 0:
        raise RuntimeError(f"trailkeeper {' '.join(args)} exited {result.exit_code}: {result.output}")
    return result.output


def refreshed(page: str) -> str:
    """`page` with every marked block replaced by the current help of its command."""
    return _BLOCK.sub(lambda m: m.group(1) + help_text(m.group("command").strip()) + m.group(4), page)


def main() -> int:
    page = CLI_MD.read_text(encoding="utf-8")
    new = refreshed(page)
    if new != page:
        CLI_MD.write_text(new, encoding="utf-8")
        print(f"updated {CLI_MD.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
