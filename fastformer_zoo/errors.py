"""The one error type of the application: a mistake the user can fix, said in one line."""

__all__ = ["UserError", "one_line"]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) folded into one space."""
    return " ".join(str(text).split())


class UserError(Exception):
    """Bad input, a bad setting or a run that cannot go on, described in one line.

    The message names the file, key or value at fault and what was expected; the tools print it as
    ``error: <message>`` and exit with code 2. Anything else that escapes is a bug and keeps its
    traceback.

    Args:
        message: what is wrong and what was expected.
        path: the file it is about, put in front as ``path: ...`` (``path:line: ...`` with ``line``).
        line: the 1-based line of ``path``.
    """

    def __init__(self, message: str, path=None, line=None):
        location = "" if path is None else str(path) if line is None else f"{path}:{line}"
        super().__init__(one_line(f"{location}: {message}" if location else message))
        self.path = None if path is None else str(path)
        self.line = line
