"""The Ezviz (萤石) Open Platform client: environment cameras' snapshots (protocols.md "Ezviz").

Every call is a form POST answered ``{"code": "200", "msg": …, "data": …}`` (the code is
a string). The access token (``/api/lapp/token/get``, about 7 days) is cached per
platform and app key, shared by every client in the process, and fetched afresh when
it is about to expire or the platform answers 10002 (token expired). A failure raises
``EzvizError`` whose ``message`` says what went wrong in words (设备不在线, …).

Configured from the settings or the environment: ``EPPARK_EZVIZ_URL`` (default
``https://open.ys7.com``), ``EPPARK_EZVIZ_APP_KEY``, ``EPPARK_EZVIZ_APP_SECRET``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from eppark.devices.pictures import FetchError, fetch

DEFAULT_URL = "https://open.ys7.com"
TIMEOUT_S = 5.0
TOKEN_MARGIN_S = 300
"""A cached token is renewed this long before the platform says it expires."""
PICTURE_MAX_BYTES = 4 * 1024 * 1024
"""The largest snapshot downloaded from a ``picUrl``."""

OK = "200"
TOKEN_EXPIRED = "10002"
ERRORS: dict[str, Any] = {
    "10001": gettext_lazy("bad parameter"),  # 参数错误
    "10002": gettext_lazy("the access token has expired"),
    "10005": gettext_lazy("the app key is frozen"),
    "10028": gettext_lazy("the daily snapshot limit has been reached"),
    "10030": gettext_lazy("the app key and app secret do not match"),
    "20002": gettext_lazy("the device is not registered"),
    "20007": gettext_lazy("the device is offline"),  # 设备不在线
    "20008": gettext_lazy("the device did not answer in time"),
    "20018": gettext_lazy("the device does not belong to this account"),
    "49999": gettext_lazy("the Ezviz platform had a system error"),
}


class EzvizError(Exception):
    """The platform refused or could not be reached; ``message`` says why in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message


def describe(code: str, msg: str = "") -> str:
    """A platform error code in words (the platform's own text for an unknown code)."""
    known = ERRORS.get(code)
    if known is not None:
        return str(known)
    return _("Ezviz error %(code)s: %(msg)s") % {"code": code, "msg": msg or "?"}


@dataclass(frozen=True)
class Config:
    """Where the platform is and the app's credentials."""

    url: str
    app_key: str
    app_secret: str

    @property
    def complete(self) -> bool:
        """Whether an app key and secret are set."""
        return bool(self.app_key and self.app_secret)


def config() -> Config:
    """The platform's address and credentials: settings first, then the environment."""

    def value(name: str, default: str = "") -> str:
        return str(getattr(settings, name, "") or os.environ.get(name, "") or default)

    return Config(
        value("EPPARK_EZVIZ_URL", DEFAULT_URL).rstrip("/"),
        value("EPPARK_EZVIZ_APP_KEY"),
        value("EPPARK_EZVIZ_APP_SECRET"),
    )


@dataclass(frozen=True)
class Device:
    """One device on the account's list."""

    serial: str
    name: str
    online: bool


_tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (url, app key) → (token, expires at)
_tokens_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop every cached token (tests; a changed secret)."""
    with _tokens_lock:
        _tokens.clear()


class EzvizClient:
    """A synchronous client for one app on one platform."""

    def __init__(
        self,
        cfg: Config | None = None,
        *,
        timeout: float = TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg or config()
        self.timeout = timeout
        self.clock = clock
        self.token_requests = 0

    # --- the wire ------------------------------------------------------------------------------

    def _post(self, path: str, form: dict[str, Any]) -> dict[str, Any]:
        """POST a form; the reply's JSON object (EzvizError when unreachable or unreadable)."""
        try:
            with httpx.Client(
                timeout=self.timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = client.post(self.cfg.url + path, data=form)
        except httpx.HTTPError as error:
            raise EzvizError(
                "", _("The Ezviz platform cannot be reached (%(error)s).") % {"error": error}
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise EzvizError(
                "",
                _("The Ezviz platform answered HTTP %(status)d without a result.")
                % {"status": response.status_code},
            )
        return body

    def _result(self, body: dict[str, Any]) -> Any:
        code = str(body.get("code", ""))
        if code != OK:
            raise EzvizError(code, describe(code, str(body.get("msg") or "")))
        return body.get("data")

    # --- the token -----------------------------------------------------------------------------

    def token(self, *, fresh: bool = False) -> str:
        """The app's access token: cached until shortly before it expires."""
        if not self.cfg.complete:
            raise EzvizError(
                "", _("The Ezviz platform is not configured (EPPARK_EZVIZ_APP_KEY, …_SECRET).")
            )
        key = (self.cfg.url, self.cfg.app_key)
        now = self.clock()
        with _tokens_lock:
            held = _tokens.get(key)
            if held is not None and not fresh and held[1] - TOKEN_MARGIN_S > now:
                return held[0]
        self.token_requests += 1
        data = self._result(
            self._post(
                "/api/lapp/token/get",
                {"appKey": self.cfg.app_key, "appSecret": self.cfg.app_secret},
            )
        )
        token = data.get("accessToken") if isinstance(data, dict) else None
        expire = data.get("expireTime") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise EzvizError("", _("The Ezviz platform gave no access token."))
        try:
            expires_at = float(str(expire)) / 1000  # ms since the epoch
        except (TypeError, ValueError):
            expires_at = now + 3600.0
        with _tokens_lock:
            _tokens[key] = (token, expires_at)
        return token

    def call(self, path: str, **form: Any) -> Any:
        """Call an endpoint with the access token; once more with a new token on 10002."""
        body = self._post(path, {"accessToken": self.token(), **form})
        if str(body.get("code", "")) == TOKEN_EXPIRED:
            body = self._post(path, {"accessToken": self.token(fresh=True), **form})
        return self._result(body)

    # --- the endpoints -------------------------------------------------------------------------

    def capture(self, serial: str, channel: int = 1) -> str:
        """Take a snapshot now; the URL of the picture (valid about 2 hours)."""
        data = self.call("/api/lapp/device/capture", deviceSerial=serial, channelNo=channel)
        url = data.get("picUrl") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise EzvizError("", _("The Ezviz platform gave no picture address."))
        return url

    def devices(self, page_start: int = 0, page_size: int = 50) -> list[Device]:
        """One page of the account's devices."""
        data = self.call("/api/lapp/device/list", pageStart=page_start, pageSize=page_size)
        out = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict) and isinstance(item.get("deviceSerial"), str):
                out.append(
                    Device(
                        item["deviceSerial"],
                        str(item.get("deviceName") or ""),
                        str(item.get("status")) == "1",
                    )
                )
        return out

    def download(self, url: str, max_bytes: int = PICTURE_MAX_BYTES) -> bytes:
        """The picture at ``url`` (a snapshot's ``picUrl``), at most ``max_bytes``."""
        try:
            return fetch(url, max_bytes, self.timeout)
        except FetchError as error:
            raise EzvizError(
                "", _("The snapshot could not be downloaded: %(error)s") % {"error": error}
            ) from error
