"""Who the driver is, when a QR page is opened inside the WeChat or Alipay app.

An unplated car's ticket belongs to its driver; outside the apps the page asks
for a phone number. Inside them the app's user id does instead:

- **sandbox** (no real provider configured: the demo, the tests): a stable
  per-browser user id, kept in a signed cookie, stands in for the openid /
  Alipay user id when the user agent is WeChat's (``MicroMessenger``) or
  Alipay's (``AlipayClient``);
- **real WeChat**: OAuth 2.0 with the silent ``snsapi_base`` scope, when
  ``EPPARK_WECHATPAY_APPID`` and ``EPPARK_WECHAT_APP_SECRET`` are set: the page
  redirects to WeChat's authorize URL, WeChat returns the phone to
  ``/wx/oauth/`` with a code, the code is exchanged for the openid
  (``/sns/oauth2/access_token``), kept in a signed cookie for
  ``OPENID_COOKIE_AGE_S``. If the exchange fails the page falls back to the
  phone field (for ``FALLBACK_AGE_S``, so the phone does not loop);
- anything else (real Alipay, a plain browser): not known; the page asks for a
  phone number.

``EPPARK_WECHAT_OAUTH_URL`` and ``EPPARK_WECHAT_API_URL`` move WeChat's two
hosts (a local stand-in in tests).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from eppark.domain.billing import ALIPAY, WECHAT
from eppark.evidence.links import public_url
from eppark.payments.providers import sandbox_on

log = logging.getLogger(__name__)

DRIVER_COOKIE = "eppark_driver"
"""Signed: the sandbox's per-browser user id, or the openid WeChat gave."""
DRIVER_SALT = "eppark.driver"
SANDBOX_COOKIE_AGE_S = 365 * 24 * 3600
OPENID_COOKIE_AGE_S = 30 * 24 * 3600
OAUTH_COOKIE = "eppark_wx_oauth"
"""Signed: the OAuth round trip's state and the page to come back to (10 minutes)."""
OAUTH_SALT = "eppark.wxoauth"
OAUTH_MAX_AGE_S = 600
FALLBACK_COOKIE = "eppark_wx_noid"
FALLBACK_AGE_S = 600
WECHAT_OAUTH_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
WECHAT_API_URL = "https://api.weixin.qq.com"
EXCHANGE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Driver:
    """A driver known by an app's user id (``channel``: ``wechat`` or ``alipay``)."""

    channel: str
    user_id: str


def app_of(user_agent: str) -> str | None:
    """``wechat`` or ``alipay`` when the page is opened inside that app; else None."""
    if "MicroMessenger" in user_agent:
        return WECHAT
    if "AlipayClient" in user_agent:
        return ALIPAY
    return None


def _user_agent(request: HttpRequest) -> str:
    return str(request.headers.get("User-Agent", ""))


def wechat_oauth_on() -> bool:
    """Whether real WeChat OAuth can name the driver (app id and secret set, no sandbox)."""
    return (
        not sandbox_on()
        and bool(os.environ.get("EPPARK_WECHATPAY_APPID"))
        and bool(os.environ.get("EPPARK_WECHAT_APP_SECRET"))
    )


def known(request: HttpRequest) -> Driver | None:
    """The driver as the cookies already say (nothing is set or asked here)."""
    channel = app_of(_user_agent(request))
    if channel is None:
        return None
    user_id = request.get_signed_cookie(DRIVER_COOKIE, default="", salt=DRIVER_SALT)
    if not user_id:
        return None
    if sandbox_on():
        return Driver(channel, user_id) if user_id.startswith("sb_") else None
    if channel == WECHAT and wechat_oauth_on() and not user_id.startswith("sb_"):
        return Driver(channel, user_id)
    return None


def identify(request: HttpRequest) -> Driver | HttpResponse | None:
    """The driver, or a redirect to WeChat's OAuth first, or None (ask for a phone number).

    In the sandbox a new in-app browser gets its user id here: call ``remember``
    on the page's response to keep it.
    """
    found = known(request)
    if found is not None:
        return found
    channel = app_of(_user_agent(request))
    if channel is None:
        return None
    if sandbox_on():
        driver = Driver(channel, f"sb_{secrets.token_hex(8)}")
        request._eppark_new_driver = driver  # type: ignore[attr-defined]
        return driver
    if channel == WECHAT and wechat_oauth_on() and FALLBACK_COOKIE not in request.COOKIES:
        return _authorize(request)
    return None


def remember(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Keep a sandbox user id ``identify`` just made (a signed cookie on ``response``)."""
    driver: Driver | None = getattr(request, "_eppark_new_driver", None)
    if driver is not None:
        response.set_signed_cookie(
            DRIVER_COOKIE,
            driver.user_id,
            salt=DRIVER_SALT,
            max_age=SANDBOX_COOKIE_AGE_S,
            httponly=True,
            samesite="Lax",
        )
    return response


def _authorize(request: HttpRequest) -> HttpResponse:
    """Send the phone to WeChat's silent authorisation, coming back to this page."""
    state = secrets.token_hex(8)
    query = urlencode(
        {
            "appid": os.environ["EPPARK_WECHATPAY_APPID"],
            "redirect_uri": f"{public_url()}/wx/oauth/",
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
    )
    base = os.environ.get("EPPARK_WECHAT_OAUTH_URL", WECHAT_OAUTH_URL)
    response = HttpResponseRedirect(f"{base}?{query}#wechat_redirect")
    response.set_signed_cookie(
        OAUTH_COOKIE,
        signing.dumps({"s": state, "n": request.get_full_path()}),
        salt=OAUTH_SALT,
        max_age=OAUTH_MAX_AGE_S,
        httponly=True,
        samesite="Lax",
    )
    return response


def oauth_return(request: HttpRequest) -> HttpResponse:
    """``/wx/oauth/``: WeChat's redirect back with a code; the openid kept, the page reopened."""
    try:
        raw = request.get_signed_cookie(OAUTH_COOKIE, salt=OAUTH_SALT, max_age=OAUTH_MAX_AGE_S)
        saved = signing.loads(str(raw))
        state, next_path = str(saved["s"]), str(saved["n"])
    except (KeyError, TypeError, ValueError, signing.BadSignature):
        return HttpResponseRedirect("/")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    openid = ""
    if request.GET.get("state") == state and request.GET.get("code"):
        openid = _exchange(str(request.GET["code"]))
    response = HttpResponseRedirect(next_path)
    response.delete_cookie(OAUTH_COOKIE)
    if openid:
        response.set_signed_cookie(
            DRIVER_COOKIE,
            openid,
            salt=DRIVER_SALT,
            max_age=OPENID_COOKIE_AGE_S,
            httponly=True,
            samesite="Lax",
        )
    else:  # the driver declined or WeChat failed: the phone field, without looping
        response.set_cookie(FALLBACK_COOKIE, "1", max_age=FALLBACK_AGE_S, samesite="Lax")
    return response


def _exchange(code: str) -> str:
    """The openid for an OAuth code ("" when WeChat refuses or cannot be reached)."""
    base = os.environ.get("EPPARK_WECHAT_API_URL", WECHAT_API_URL).rstrip("/")
    params = {
        "appid": os.environ.get("EPPARK_WECHATPAY_APPID", ""),
        "secret": os.environ.get("EPPARK_WECHAT_APP_SECRET", ""),
        "code": code,
        "grant_type": "authorization_code",
    }
    try:
        reply = httpx.get(
            f"{base}/sns/oauth2/access_token", params=params, timeout=EXCHANGE_TIMEOUT_S
        )
        data = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("WeChat OAuth code exchange failed: %s", exc)
        return ""
    openid = data.get("openid") if isinstance(data, dict) else None
    if not isinstance(openid, str) or not openid:
        log.warning("WeChat OAuth refused the code: %s", data)
        return ""
    return openid[:128]
