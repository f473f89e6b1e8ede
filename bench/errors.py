"""Errors a user can fix. The CLI prints their message as one line on stderr: exit 2 for bad input,
exit 1 when storage fails (full, read-only) in the middle of a run."""
import errno
import re


class UsageError(ValueError):
    """Bad input from the user: an unknown name, a bad number, a missing file.

    Subclasses ValueError so library callers (and the registries' ``get``) can catch it as one.
    """


class DataNotFound(UsageError):
    """A dataset's files are not where they are expected (nothing is ever downloaded)."""


# A write that failed because of the storage, not the program: the run stops, nothing is recorded
# as a result (a trial that could not save is not a failed trial), and resuming once the storage is
# fixed finishes the work. EACCES/EPERM: a directory whose permissions changed under the run.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG}


def storage_errno(text: str) -> int | None:
    """The errno of a storage failure named in an error message (``[Errno 28] ...``), else None."""
    m = re.search(r"\[Errno (\d+)\]", text)
    return int(m.group(1)) if m and int(m.group(1)) in STORAGE_ERRNOS else None
