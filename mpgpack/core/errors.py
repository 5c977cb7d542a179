"""The one exception type for user mistakes: the CLI prints it as one line, no traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad file, bad flag, tampered bundle). Message is one line."""
