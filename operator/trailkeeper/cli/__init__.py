"""The `trailkeeper` command line."""

# Every command's own settings, not only the group's: click keeps a command's help option once made, so a
# command first invoked on its own (a test, an embedding) would otherwise lose `-h` for good.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
