"""The one door to Drip's API: base URL, auth, User-Agent, timeout, error mapping.

Endpoints and bodies are `app.drip_api`'s; errors follow Drip's rest/_errors.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests

from app import __version__
from app.delivery.errors import DeliveryError, from_status, parse_retry_after, unreachable
from app.drip_api import BATCH, INDIVIDUAL, PER_SUBSCRIBER, Record, is_campaign_id

CHUNK = 4096  # bytes of an answer read at a time, each against the call's deadline
USER_AGENT = f"drip-bridge/{__version__} (+https://github.com/drip-bridge/drip-bridge)"


class DripClient:
    def __init__(self, base_url: str, account_id: str, token: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.session = requests.Session()
        self.session.auth = (token, "")  # the token is the Basic user, empty password
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.timeout = timeout

    def send(self, kind: str, record: Record, campaign_id: str | None = None) -> None:
        """Deliver one record to its individual endpoint."""
        if kind in PER_SUBSCRIBER:
            self.person_call(kind, str(record["email"]))
            return
        path, wrap = INDIVIDUAL[kind]
        if "{campaign}" in path and not is_campaign_id(campaign_id):
            # Never a path of a message's choosing: the id goes into the URL.
            raise DeliveryError(
                f"not a Drip campaign id: {str(campaign_id)[:40]!r}", permanent=True, code="bad_id"
            )
        url = path.format(account=quote(self.account_id, safe=""), campaign=campaign_id)
        self._post(url, wrap([record]))

    def person_call(self, kind: str, email: str) -> None:
        """DELETE a subscriber or unsubscribe them from all mailings (no body).

        A deletion Drip answers 404 is done: the subscriber is already gone (deleted
        in Drip, or renamed by an earlier `new_email`, whose new address is deleted too).
        """
        method, path = PER_SUBSCRIBER[kind]
        url = path.format(account=quote(self.account_id, safe=""), subscriber=quote(email, safe=""))
        self._request(method, url, None, gone_is_done=kind == "delete")

    def send_batch(self, kind: str, records: Sequence[Record]) -> None:
        """Deliver 1 to 1000 records in one batch call (processed later by Drip)."""
        path, wrap = BATCH[kind]
        self._post(path.format(account=self.account_id), wrap(list(records)))

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        """GET /v2/:account/campaigns/:id (rest/_campaigns.md): the campaign, or {}."""
        if not is_campaign_id(campaign_id):
            raise DeliveryError(f"not a Drip campaign id: {campaign_id[:40]!r}", permanent=True)
        path = f"/v2/{quote(self.account_id, safe='')}/campaigns/{campaign_id}"
        found: list[dict[str, Any]] = self._request("GET", path, None).json().get("campaigns", [])
        return found[0] if found else {}

    def whoami(self) -> dict[str, Any]:
        """GET /v2/user: proves the token works."""
        response = self._request("GET", "/v2/user", None)
        body: dict[str, Any] = response.json()
        return body

    def _post(self, path: str, body: Any) -> None:
        self._request("POST", path, body)

    def _request(
        self, method: str, path: str, body: Any, gone_is_done: bool = False
    ) -> requests.Response:
        """One call, answered within `timeout` seconds in all: requests' own timeout
        is per read, so a server trickling its answer is cut off here. With
        `gone_is_done`, a 404 counts as done (what was to be removed is gone)."""
        deadline = time.monotonic() + self.timeout
        try:
            response = self.session.request(
                method, self.base_url + path, json=body, timeout=self.timeout, stream=True
            )
            with response:
                content = bytearray()
                # read1: what has arrived so far, so the deadline is checked as it trickles
                while chunk := response.raw.read1(CHUNK, decode_content=True):
                    content += chunk
                    if time.monotonic() > deadline:
                        raise requests.Timeout("the answer took longer than the timeout")
                response._content = bytes(content)
        except requests.RequestException as exc:
            timed_out = self.timeout if isinstance(exc, requests.Timeout) else None
            raise unreachable("Drip", exc, timed_out) from exc
        if response.ok or (gone_is_done and response.status_code == 404):
            return response
        code, message = drip_error(response)
        raise from_status(
            response.status_code,
            code,
            message,
            parse_retry_after(response.headers.get("Retry-After")),
        )


def drip_error(response: requests.Response) -> tuple[str, str]:
    """Drip's error code and message from any of its error bodies (rest/_errors.md)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            attribute = f" ({first['attribute']})" if first.get("attribute") else ""
            return str(
                first.get("code") or f"http_{status}"
            ), f"{first.get('message', '')}{attribute}"
        # 429: {"message": ...}; 400 bad JSON: {"status": 400, "error": ...}
        text = body.get("message") or body.get("error")
        if text:
            return ("rate_limited" if status == 429 else f"http_{status}"), str(text)
    return f"http_{status}", f"Drip answered HTTP {status}"
