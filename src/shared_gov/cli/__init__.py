"""The ``shared-gov`` command line (typer + rich)."""
