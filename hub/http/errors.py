"""Every failed request becomes JSON ``{"error": ..., "status": N}``; never an HTML traceback."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from glimpser.hub.relay.relay import ViewerLimitError
from glimpser.hub.store.captures import InvalidCursorError
from glimpser.hub.store.registry import AmbiguousIdError
from glimpser.hub.store.templates import DuplicateError, ReadOnlyError
from glimpser.shared.errors import InvalidIdError, NotFoundError, TransportError
from glimpser.shared.models import ErrorBody

_LOGGER = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by handlers to answer with ``status``, ``message`` and an optional ``detail``."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def field_problem(field: str, message: str) -> dict[str, str]:
    """One entry of a 4xx ``detail`` list."""
    return {"field": field, "message": message}


def json_error(status: int, message: str, detail: Any = None) -> web.Response:
    """The JSON error response."""
    body = ErrorBody(error=message, status=status, detail=detail).model_dump_json(exclude_none=True)
    return web.Response(status=status, text=body, content_type="application/json")


_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (InvalidIdError, 400),
    (InvalidCursorError, 400),
    (ReadOnlyError, 409),
    (NotFoundError, 404),
    (AmbiguousIdError, 409),
    (ViewerLimitError, 503),
    (TransportError, 503),
)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate ApiError, known domain errors and aiohttp's HTTP errors into JSON."""
    try:
        return await handler(request)
    except ApiError as err:
        return json_error(err.status, err.message, err.detail)
    except DuplicateError as err:
        return json_error(409, str(err), [field_problem(err.field, str(err))])
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return json_error(err.status, _http_message(request, err))
    except tuple(t for t, _ in _STATUS_OF) as err:
        status = next(code for t, code in _STATUS_OF if isinstance(err, t))
        return json_error(status, str(err))
    except Exception:
        _LOGGER.exception("unhandled error serving %s %s", request.method, request.path)
        return json_error(500, "internal server error")


def _http_message(request: web.Request, err: web.HTTPException) -> str:
    if err.status == 404:
        return f"no such endpoint: {request.path}"
    if err.status == 405:
        return f"method {request.method} not allowed on {request.path}"
    return err.reason
