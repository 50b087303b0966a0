"""The root of every error a user can fix: the CLI prints its message as one line, without a traceback."""


class GanprovError(Exception):
    """Bad input, a missing step or mismatched artefacts; the message says what and what to do."""
