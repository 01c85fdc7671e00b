"""The one error family. Every message says what to do next."""

from __future__ import annotations


class LmmError(Exception):
    """Base of every error lmm raises on purpose; the CLI prints it without a traceback."""


class StoreError(LmmError):
    """The store cannot be opened, migrated or written."""


class InputError(LmmError):
    """A file given to lmm is not in a format it can read."""


class MissingExtra(LmmError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this needs the optional dependency {module!r}; "
            f"install it with: pip install 'lmm[{extra}]'"
        )


class CognitionError(LmmError):
    """A cognition is malformed or does not exist."""


class ServerUnavailable(LmmError):
    """No server answers (none started, or it died): callers work in-process instead."""


class NotTheServer(ServerUnavailable):
    """What listens at the address in `server.json` cannot prove the token (a stranger on the port
    of a server that died): it learns nothing but a nonce, and callers work in-process."""

    def __init__(self, message: str, address: object) -> None:
        super().__init__(message)
        self.address = address


class ServerError(LmmError):
    """The server answered with an error, or did not answer in time."""
