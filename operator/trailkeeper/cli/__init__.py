"""The `trailkeeper` command line."""
