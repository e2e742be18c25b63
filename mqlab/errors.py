"""Errors that reach the user as one line, never as a traceback."""


class LabError(Exception):
    """A problem the user can act on. ``str(err)`` is the whole message."""


class UsageError(LabError):
    """Bad input: an unknown stack, a bad count, a value that is not a number."""


class EngineError(LabError):
    """Docker or Compose is missing or not reachable."""
