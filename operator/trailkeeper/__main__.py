"""`python -m trailkeeper` is the `trailkeeper` command."""

from trailkeeper.cli.main import main

main()
