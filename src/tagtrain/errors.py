"""The one exception tree of tagtrain.

Every error a person can see derives from :class:`TagtrainError`. Each carries the HTTP status the
server answers with and a message that says what is wrong and, where it helps, what to do. Third-party
errors (Pillow, SQLAlchemy, zipfile, csv) are mapped to these where they enter our code; the server
renders them in one handler and the CLI prints ``message`` on stderr and exits 2 for bad input, 1 else.

    TagtrainError (500)
    ├── BadInput (400)            the request or file is wrong; fix it and retry
    │   ├── InvalidImage (422)    a file is not an acceptable image (names the file and the reason)
    │   ├── UnsafeArchive (422)   a zip tries path traversal, links, or exceeds limits
    │   ├── PackageError (422)    a model package is incomplete, tampered with, or fails its checks
    │   └── TooLarge (413)        an upload exceeds the size limit
    ├── Unauthorized (401)        no valid session or key
    ├── Forbidden (403)           authenticated, but not allowed
    ├── NotFound (404)
    ├── Cancelled (409)           a training job stopped because someone canceled it
    └── Conflict (409)            the change clashes with what is stored (e.g. a name in use)
"""

from __future__ import annotations


class TagtrainError(Exception):
    """Base of every tagtrain error; ``status`` is the HTTP status the server answers with."""

    status: int = 500
    #: Whether the CLI treats it as bad input (exit 2) rather than a failure (exit 1).
    bad_input: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(TagtrainError):
    status = 400
    bad_input = True


class InvalidImage(BadInput):
    status = 422

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class UnsafeArchive(BadInput):
    status = 422


class PackageError(BadInput):
    """A model package (or one about to be written) that must not be used: a file missing, changed
    since ``manifest.json`` recorded its sha256, unparseable, with the wrong tensor names or
    layout, or whose outputs differ from the golden ones. ``name`` is the file (path) at fault."""

    status = 422

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class TooLarge(BadInput):
    status = 413


class Unauthorized(TagtrainError):
    status = 401
    bad_input = True


class Forbidden(TagtrainError):
    status = 403
    bad_input = True


class Cancelled(TagtrainError):
    """Work stopped on request (a canceled training job); nothing half-done is kept."""

    status = 409


class NotFound(TagtrainError):
    status = 404
    bad_input = True


class Conflict(TagtrainError):
    status = 409
    bad_input = True


class Unavailable(TagtrainError):
    """Not ready yet, or a dependency is away (no model deployed, a camera with no frame, the
    server unreachable from an agent); trying again later may work."""

    status = 503
