"""Errors a user can fix. The CLI prints their message as one line on stderr and exits 2."""


class UsageError(ValueError):
    """Bad input from the user: an unknown name, a bad number, a missing file.

    Subclasses ValueError so library callers (and the registries' ``get``) can catch it as one.
    """


class DataNotFound(UsageError):
    """A dataset's files are not where they are expected (nothing is ever downloaded)."""
