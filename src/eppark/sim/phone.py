"""A simulated driver's phone browser: opens pages over real HTTP, reads their forms, submits.

The pages are read the way a person reads them: by their visible labels
(contracts.md, "Payments": ``手机号``, ``确认进场``, ``立即支付``, ``确认支付``,
``支付成功``), never by an element id or a template detail. Forms are parsed
with the standard library's ``html.parser``; a submit sends the form's fields
(hidden ones included: the CSRF token), the chosen button's name and value,
and the cookies the phone was given.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

# What the phones say they are: a plain phone browser, WeChat's and Alipay's in-app browsers.
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WECHAT = (
    "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 "
    "Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
ALIPAY = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 ChannelId(0) Ariver/1.1.0 AliApp(AP/10.5.96.6000) "
    "Nebula WK RVKType(0) AlipayDefined(nt:WIFI,ws:390|780|3.0) AlipayClient/10.5.96.6000 "
    "Language/zh-Hans Region/CN"
)

_SPACE = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


@dataclass
class Field:
    """One form control: an input, a select or a textarea."""

    tag: str
    type: str
    name: str
    value: str
    id: str = ""
    checked: bool = False
    placeholder: str = ""
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected)
    label: str = ""


@dataclass
class Button:
    """A submit button: its visible label and the name/value it sends."""

    label: str
    name: str = ""
    value: str = ""


@dataclass
class Form:
    """A form as the page has it."""

    action: str
    method: str
    fields: list[Field] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    text: str = ""

    def button(self, label: str) -> Button | None:
        """The submit button whose label contains ``label``."""
        return next((b for b in self.buttons if label in b.label), None)

    def field_labelled(self, label: str) -> Field | None:
        """The text field a person would type ``label`` into (its label or placeholder)."""
        for candidate in self.fields:
            if candidate.tag == "input" and (
                label in candidate.label or label in candidate.placeholder
            ):
                return candidate
        return None

    def data(self, button: Button | None, rng: random.Random) -> dict[str, str]:
        """What submitting with ``button`` sends: a choice made for every radio group."""
        out: dict[str, str] = {}
        radios: dict[str, list[Field]] = {}
        for control in self.fields:
            if not control.name:
                continue
            if control.tag == "select":
                chosen = [v for v, selected in control.options if selected]
                if chosen or control.options:
                    out[control.name] = chosen[0] if chosen else control.options[0][0]
            elif control.type == "radio":
                radios.setdefault(control.name, []).append(control)
            elif control.type == "checkbox":
                if control.checked:
                    out[control.name] = control.value or "on"
            elif control.type not in ("submit", "button", "image", "reset", "file"):
                out[control.name] = control.value
        for name, group in radios.items():
            checked = [r for r in group if r.checked]
            out[name] = (checked[0] if checked else rng.choice(group)).value or "on"
        if button is not None and button.name:
            out[button.name] = button.value
        return out


@dataclass
class Link:
    """An ``<a href>`` and its text."""

    href: str
    text: str


class _Parser(HTMLParser):
    """Collects forms, links, labels, the title and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[Link] = []
        self.labels: dict[str, str] = {}  # input id → label text
        self.text_parts: list[str] = []
        self.refresh = ""
        self._form: Form | None = None
        self._button: tuple[Button, list[str]] | None = None
        self._link: tuple[str, list[str]] | None = None
        self._label: tuple[str, list[str], list[Field]] | None = None
        self._select: Field | None = None
        self._option: tuple[str, bool, list[str]] | None = None
        self._textarea: Field | None = None
        self._skip = 0  # inside <script>/<style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "form":
            self._form = Form(a.get("action", ""), (a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            self.refresh = a.get("content", "")
        elif tag == "a" and "href" in a:
            self._link = (a["href"], [])
        elif tag == "label":
            self._label = (a.get("for", ""), [], [])
        elif tag == "button":
            kind = a.get("type", "submit").lower()
            if kind == "submit":
                self._button = (Button("", a.get("name", ""), a.get("value", "")), [])
        elif tag == "input":
            self._input(a)
        elif tag == "select":
            self._select = Field("select", "select", a.get("name", ""), "", a.get("id", ""))
        elif tag == "option" and self._select is not None:
            self._option = (a.get("value", ""), "selected" in a, [])
        elif tag == "textarea":
            self._textarea = Field("textarea", "textarea", a.get("name", ""), "", a.get("id", ""))

    def _input(self, a: dict[str, str]) -> None:
        kind = a.get("type", "text").lower()
        if kind in ("submit", "image"):
            if self._form is not None:
                value = a.get("value", "")
                self._form.buttons.append(Button(value, a.get("name", ""), value))
            return
        control = Field(
            "input",
            kind,
            a.get("name", ""),
            a.get("value", "on" if kind in ("radio", "checkbox") else ""),
            a.get("id", ""),
            "checked" in a,
            a.get("placeholder", ""),
        )
        if self._form is not None:
            self._form.fields.append(control)
        if self._label is not None:
            self._label[2].append(control)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag == "form":
            self._form = None
        elif tag == "a" and self._link is not None:
            href, parts = self._link
            self.links.append(Link(href, _clean("".join(parts))))
            self._link = None
        elif tag == "label" and self._label is not None:
            target, parts, inside = self._label
            text = _clean("".join(parts))
            if target:
                self.labels[target] = text
            for control in inside:
                control.label = control.label or text
            self._label = None
        elif tag == "button" and self._button is not None:
            button, parts = self._button
            button.label = _clean("".join(parts))
            if self._form is not None:
                self._form.buttons.append(button)
            self._button = None
        elif tag == "option" and self._option is not None and self._select is not None:
            value, selected, parts = self._option
            self._select.options.append((value or _clean("".join(parts)), selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            if self._form is not None:
                self._form.fields.append(self._select)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            if self._form is not None:
                self._form.fields.append(self._textarea)
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text_parts.append(data)
        if self._form is not None:
            self._form.text += data
        if self._link is not None:
            self._link[1].append(data)
        if self._button is not None:
            self._button[1].append(data)
        if self._label is not None:
            self._label[1].append(data)
        if self._option is not None:
            self._option[2].append(data)
        if self._textarea is not None:
            self._textarea.value += data


@dataclass
class Page:
    """A page the phone shows: where it is, its status, what it says, its forms and links."""

    url: str
    status: int
    html: str
    forms: list[Form]
    links: list[Link]
    text: str
    refresh: str = ""

    @classmethod
    def parse(cls, url: str, status: int, html: str) -> Page:
        """Read a page's forms (labels attached to their fields), links and text."""
        parser = _Parser()
        parser.feed(html)
        parser.close()
        for form in parser.forms:
            form.action = urljoin(url, form.action) if form.action else url
            for control in form.fields:
                if not control.label and control.id in parser.labels:
                    control.label = parser.labels[control.id]
        return cls(
            url,
            status,
            html,
            parser.forms,
            parser.links,
            _clean(" ".join(parser.text_parts)),
            parser.refresh,
        )

    def says(self, words: str) -> bool:
        """Whether the page's visible text holds ``words``."""
        return words in self.text

    def form_with_button(self, label: str) -> tuple[Form, Button] | None:
        """The form and its button labelled ``label``."""
        for form in self.forms:
            button = form.button(label)
            if button is not None:
                return form, button
        return None

    def form_with_field(self, label: str) -> tuple[Form, Field] | None:
        """The form and its field labelled ``label``."""
        for form in self.forms:
            found = form.field_labelled(label)
            if found is not None:
                return form, found
        return None

    def link(self, label: str) -> str | None:
        """The address of the link whose text contains ``label``."""
        for link in self.links:
            if label in link.text and not link.href.startswith(("javascript:", "#")):
                return urljoin(self.url, link.href)
        return None

    def refresh_url(self) -> str | None:
        """Where a ``<meta http-equiv=refresh>`` sends the phone (this page if no URL)."""
        if not self.refresh:
            return None
        found = re.search(r"url\s*=\s*['\"]?([^'\";]+)", self.refresh, re.IGNORECASE)
        return urljoin(self.url, found.group(1).strip()) if found else self.url

    def summary(self) -> str:
        """A short description for logs: status and the start of the text."""
        return f"{self.status} {self.text[:120]}"


class Phone:
    """One driver's phone: a browser session (cookies) over real HTTP."""

    def __init__(
        self, user_agent: str = SAFARI, *, rng: random.Random | None = None, timeout: float = 15.0
    ) -> None:
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(
            follow_redirects=True,
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept-Language": "zh-CN,zh;q=0.9"},
        )
        self.visited: list[str] = []

    async def __aenter__(self) -> Phone:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def open(self, url: str) -> Page:
        """Open ``url`` (a scanned QR code, a link)."""
        response = await self.client.get(url)
        return self._page(response)

    async def submit(
        self, page: Page, form: Form, button: Button | None, typed: dict[str, str] | None = None
    ) -> Page:
        """Submit ``form`` with ``button`` after typing ``typed`` (field name → text)."""
        data = form.data(button, self.rng)
        data.update(typed or {})
        headers = {"Referer": page.url}
        if form.method == "post":
            response = await self.client.post(form.action, data=data, headers=headers)
        else:
            response = await self.client.get(form.action, params=data, headers=headers)
        return self._page(response)

    def _page(self, response: httpx.Response) -> Page:
        for step in (*response.history, response):
            self.visited.append(str(step.url))
        text = response.text if "html" in response.headers.get("content-type", "html") else ""
        return Page.parse(str(response.url), response.status_code, text)
