"""Errors a user can act on; the command-line tools print their message as one line and exit non-zero."""


class TopRewardError(Exception):
    """Base of every error caused by input or setup rather than by a bug."""
