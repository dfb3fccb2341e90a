"""The `trailkeeper` command group; each command's work lives in a module of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trailkeeper import __version__
from trailkeeper.api.crd import crd_files
from trailkeeper.api.manifests import Manifest, load_manifests


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trailkeeper")
def cli() -> None:
    """AWS CloudTrail managed as Kubernetes resources."""


def load_or_exit(paths: tuple[str, ...]) -> list[Manifest]:
    """The valid manifests of the files; on any problem print one line per problem and exit 1."""
    manifests, problems = load_manifests(paths)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(problems)} problem(s) found; nothing was sent to AWS", err=True)
        sys.exit(1)
    if not manifests:
        click.echo("error: no Trail or LogRetention objects found in " + ", ".join(paths), err=True)
        sys.exit(1)
    return manifests


manifest_files = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="A manifest file or a directory of them (repeatable).",
)


@cli.command()
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one file per CRD here instead of printing them.",
)
def crds(output_dir: Path | None) -> None:
    """The CRD YAML generated from the models (what crds/ holds)."""
    files = crd_files()
    if output_dir is None:
        click.echo("---\n".join(files.values()), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (output_dir / name).write_text(content, encoding="utf-8")
        click.echo(f"wrote {output_dir / name}")


def main() -> None:
    cli(prog_name="trailkeeper")
