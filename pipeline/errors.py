"""The one exception type whose message is shown to the user as a single line (never a traceback)."""


class UserError(Exception):
    """Bad input or environment the user can fix: the message names the file and the fix."""


class VideoError(UserError):
    """A video that cannot be decoded (unreadable, empty, truncated)."""


class WeightsError(UserError):
    """Model weights that are missing, unreadable or of the wrong layout."""


class CacheError(UserError):
    """A cache entry that exists but cannot be read back (it is recomputed)."""
