"""ABP HTTP errors, both documented body shapes (docs/reference/abp.md §3).

Middleware errors use `{"error": "..."}`; route errors use FastAPI's `{"detail": ...}` where detail
is a string, an object (`message`/`error`, R1 auth, R2 409) or a list of field errors (422).
Every exception keeps the HTTP status and the raw body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One 422 validation error: `loc` is the path into the request (e.g. body.orders.0.orderStake)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


def error_text(body: Any) -> str:
    """Normalised error text (docs/reference/abp.md §3): `error` string, else `detail` string, else
    `detail.message`/`detail.error`, else the joined `msg` of a `detail` list."""
    if not isinstance(body, dict):
        return "" if body is None else str(body)[:500]
    if isinstance(body.get("error"), str):
        return body["error"]
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        for key in ("message", "error"):
            if isinstance(detail.get(key), str):
                return detail[key]
    if isinstance(detail, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(body)[:500]


class AbpError(Exception):
    """An ABP request failed. `status` is the HTTP status (None: no response), `body` the raw body."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(f"{status or '-'} {message}")
        self.status = status
        self.body = body
        self.message = message


class AbpUnavailable(AbpError):
    """No usable answer: timeout, connection error, or 5xx after retries. For a placement the
    outcome is UNKNOWN: the order may or may not exist (reconcile by requestUuid)."""


class AbpProtocolError(AbpError):
    """A success status with a body we cannot read (not JSON, wrong shape)."""


class AbpAuthError(AbpError):
    """401/403: bad, inactive or missing key, or a resource/endpoint we may not use."""


class AbpBadRequest(AbpError):
    """400 that is not an all-declined place-orders answer (missing filter, bad slug)."""


class AbpNotFound(AbpError):
    """404: nothing matches."""


class AbpConflict(AbpError):
    """409 on place-orders: every order was a duplicate (docs/reference/abp.md §8.4); or an account exists.

    `duplicate_uuids` / `in_progress_uuids` come from the top level (R1) or under `detail` (R2);
    a plain string detail ("Duplicate request - ...") leaves them empty: treat all as duplicates.
    """

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message, status, body)
        src = body if isinstance(body, dict) else {}
        if isinstance(src.get("detail"), dict):
            src = src["detail"]
        self.duplicate_uuids: list[str] = [str(u) for u in src.get("duplicateUuids") or []]
        self.in_progress_uuids: list[str] = [str(u) for u in src.get("inProgressUuids") or []]


class AbpValidationError(AbpError):
    """422: the body failed schema validation; `field_errors` lists each field."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message, status, body)
        detail = body.get("detail") if isinstance(body, dict) else None
        self.field_errors: list[FieldError] = [
            FieldError(tuple(d.get("loc") or ()), str(d.get("msg", "")), str(d.get("type", "")))
            for d in (detail if isinstance(detail, list) else [])
            if isinstance(d, dict)
        ]


class AbpRateLimited(AbpError):
    """429. `retry_after` seconds from the `Retry-After` header, else the body's `retry_after`."""

    def __init__(
        self, message: str, status: int | None = None, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status, body)
        self.retry_after = retry_after


class AbpServerError(AbpUnavailable):
    """5xx other than 501 (500 internal, 503 dependency down): for a placement the outcome is
    unknown, as with a timeout."""


def error_for(status: int, body: Any, retry_after: float | None = None) -> AbpError:
    """The exception for a non-success status."""
    text = error_text(body)
    if status == 429:
        return AbpRateLimited(text, status, body, retry_after)
    kinds: dict[int, type[AbpError]] = {
        400: AbpBadRequest, 401: AbpAuthError, 403: AbpAuthError, 404: AbpNotFound,
        409: AbpConflict, 422: AbpValidationError,
    }
    if status in kinds:
        return kinds[status](text, status, body)
    if status >= 500 and status != 501:  # 501 = futures not implemented: a plain refusal
        return AbpServerError(text, status, body)
    return AbpError(text, status, body)
