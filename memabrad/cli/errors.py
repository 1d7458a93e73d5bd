"""CLI error kinds, mapped to exit codes by ``memabrad.cli.main``."""


class CliError(Exception):
    """A failure that is not the user's input (exit 1)."""


class UsageError(CliError):
    """Bad arguments, config or input files (exit 2); the message names the problem."""
