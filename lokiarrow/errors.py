"""The error tree: every error the core raises carries the HTTP status Loki answers it with.

The server renders any `LokiError` as Loki does (plain text body, the status below); the CLI and
the Python API show the same message. Messages use Loki's words where Loki reports the error.
"""

from __future__ import annotations


class LokiError(Exception):
    """Root of every error lokiarrow raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(LokiError):
    """The request is malformed or breaks a limit: HTTP 400."""

    status = 400


class ParseError(BadRequest):
    """A LogQL syntax error, printed as Loki prints it.

    Loki writes `parse error at line L, col C: msg` when it knows the position and
    `parse error : msg` when it does not (line 0); a few semantic errors carry line 0 with a column.
    """

    def __init__(self, msg: str, line: int = 0, col: int = 0) -> None:
        self.msg = msg
        self.line = line
        self.col = col
        if line == 0 and col == 0:
            text = f"parse error : {msg}"
        else:
            text = f"parse error at line {line}, col {col}: {msg}"
        super().__init__(text)


class BodyTooLarge(BadRequest):
    """A push body over Loki's receive or decompression limit: Loki answers 413."""

    status = 413


class NotFound(LokiError):
    status = 404


class TooManyRequests(LokiError):
    """A rate or stream limit was hit: HTTP 429, the client should retry later."""

    status = 429


class Unsupported(BadRequest):
    """Valid LogQL (or a valid parameter) that this version does not evaluate yet."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported: {what}")
