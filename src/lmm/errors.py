"""The one error family. Every message says what to do next.

    LmmError            anything lmm raises on purpose (also raised as is, for a plain refusal)
      StoreError        the store cannot be opened, migrated or written
      InputError        a file given to lmm (transcript, export, import) cannot be read
      MissingExtra      an optional dependency (an `lmm[extra]`) is not installed
      CognitionError    a cognition is malformed or does not exist (remember, edit, forget, move)
      ServerUnavailable no lmm server answers: the caller works in-process instead
        NotTheServer    what listens at server.json's address cannot prove the token
      ServerError       the lmm server answered with an error, or not in time

Where they are caught broadly (the boundaries):
    cli.main: LmmError -> `lmm: error: MESSAGE` on stderr, exit code 2
    serve.hooks.run_hook: Exception -> logged to hooks.log, the hook prints nothing, exit 0
    serve.hooks.main: BaseException -> logged to hooks.log, exit 0
    serve.server.answer: LmmError -> its message in the reply; Exception -> logged, the reply
        says `internal error in OP: TYPE`; the server keeps serving
    serve.mcp._guard: LmmError -> a ToolError with its message; Exception -> logged, a ToolError
        naming the type and hooks.log
    serve.background.run_round: Exception -> logged, the transcripts queued again
    serve.background.main: BaseException -> logged (`job stopped`), exit 1
    ui.server.App.handle: LmmError -> a 400 page with its message
    ingest.run.read_job: Exception -> logged, the file reported as failed, the others read on
    serve.doctor.store_checks: Exception -> a FAIL check naming it
"""

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
