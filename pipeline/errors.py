"""The one exception type whose message is shown to the user as a single line (never a traceback)."""

import errno
from typing import Iterable


class UserError(Exception):
    """Bad input or environment the user can fix: the message names the file and the fix."""


class VideoError(UserError):
    """A video that cannot be decoded (unreadable, empty, truncated)."""


class WeightsError(UserError):
    """Model weights that are missing, unreadable or of the wrong layout."""


class CacheError(UserError):
    """A cache entry that exists but cannot be read back (it is recomputed)."""


class DiskFullError(UserError):
    """The disk (or quota) ran out while writing; what was finished before is kept."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-space error (ENOSPC, or EDQUOT: the user's quota)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(where: object) -> DiskFullError:
    """The one line for a full disk while writing under ``where``."""
    return DiskFullError(f"{where}: no space left on device; free some space (or use another --workdir) and run the "
                         "same command again: finished work is kept")


def check_choice(option: str, value: object, choices: Iterable[str]) -> None:
    """One line when ``value`` of ``option`` (``--crops``) is not among ``choices``."""
    if value not in choices:
        raise UserError(f"{option} {value}: choose one of {', '.join(choices)}")


def check_at_least_one(option: str, value: int | None) -> None:
    """One line when ``value`` of ``option`` is given and below 1 (None stands for the option's automatic value)."""
    if value is not None and value < 1:
        raise UserError(f"{option} {value}: must be at least 1")
