"""Walk every URL the back office registers as a one-lot operator and as an agent.

Two lots are fully populated; every text of lot B carries a marker (ZZB, its
plate, its phone). Walking lot A's staff through each registered model admin —
list, each filter and date link the list renders, search, add, every per-object
URL (change, history, delete, password, past versions), autocomplete for every
relation, inline forms — no page shows a marker, and no POST (a change form or
inline pointed at a lot-B row, an add form, an action on lot-B rows, a change or
delete of a lot-B row) changes lot B or ties anything to it.

The models come from ``admin.site._registry``: a model admin registered later is
walked without touching this file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import URLPattern, reverse

from tests.integration.factories import build_full_lot

pytestmark = pytest.mark.django_db

B_PLATE = "粤Z77777"
B_PHONE = "13977777777"
MARKERS = ("zzb", "Z77777", B_PHONE)

Snapshot = dict[str, dict[Any, dict[str, Any]]]


def _models() -> list[type[Model]]:
    return list(apps.get_models(include_auto_created=True))


def snapshot() -> Snapshot:
    """Every row of every table, by model label and primary key."""
    return {
        m._meta.label: {row["pk_"]: row for row in m._default_manager.values(pk_=_pk(m), **_all(m))}
        for m in _models()
    }


def _pk(model: type[Model]) -> Any:
    from django.db.models import F

    return F(model._meta.pk.attname)


def _all(model: type[Model]) -> dict[str, Any]:
    from django.db.models import F

    return {f"f_{f.attname}": F(f.attname) for f in model._meta.concrete_fields}


@dataclass
class Walk:
    """Two lots; lot B's rows (by model label) and its markers."""

    a_operator: User
    a_agent: User
    b_rows: Snapshot

    def b_pks(self, model: Any) -> set[Any]:
        return set(self.b_rows.get(model._meta.label, {}))


@pytest.fixture
def walk(db: Any) -> Walk:
    User.objects.create_superuser("root", password="pw-not-used")
    a = build_full_lot("caike", "彩科彩悦大厦", "粤B11111", "13811111111")
    before = snapshot()
    build_full_lot("zzb-futian", "ZZB福田中心", B_PLATE, B_PHONE)
    after = snapshot()
    b_rows = {
        label: {pk: row for pk, row in rows.items() if pk not in before.get(label, {})}
        for label, rows in after.items()
    }
    return Walk(a.operator, a.agent, {k: v for k, v in b_rows.items() if v})


def assert_lot_b_intact(walk: Walk, what: str) -> None:
    """Lot B's rows are all there unchanged, and no other row points at one of them."""
    now = snapshot()
    for label, rows in walk.b_rows.items():
        for pk, row in rows.items():
            assert now[label].get(pk) == row, f"{what}: lot B's {label} {pk} changed"
    for model in _models():
        links = [f for f in model._meta.concrete_fields if f.is_relation]
        b_of = {f.attname: walk.b_pks(f.related_model) for f in links}
        for pk, row in now[model._meta.label].items():
            if pk in walk.b_pks(model):
                continue
            for attname, b_pks in b_of.items():
                value = row[f"f_{attname}"]
                assert value is None or value not in b_pks, (
                    f"{what}: {model._meta.label} {pk}.{attname} now points at lot B"
                )


def assert_clean(response: Any, what: str, echo: str = "") -> str:
    """No server error and no marker of lot B (``echo``: the search term, shown back)."""
    assert response.status_code < 500, f"{what}: {response.status_code}"
    body: str = response.content.decode(errors="replace")
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", unescape(body))
    if echo:  # the term in the search box and in links that keep the filters
        text = re.sub(r'(href|value)="[^"]*"', "", text).replace(echo, "")
    for marker in MARKERS:
        assert marker.lower() not in text.lower(), f"{what} shows {marker!r} of lot B"
    return body


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------- URLs


def registry() -> list[tuple[type[Model], Any]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _info(model: type[Model]) -> str:
    return f"admin:{model._meta.app_label}_{model._meta.model_name}"


def past_versions(model: type[Model], pk: Any) -> list[Any]:
    """History ids of a row's past versions (django-simple-history), if it keeps them."""
    attr = getattr(model._meta, "simple_history_manager_attribute", None)
    if attr is None:
        return []
    manager = getattr(model, attr)
    return list(manager.filter(**{model._meta.pk.attname: pk}).values_list("history_id", flat=True))


def object_urls(model: type[Model], model_admin: Any, pk: Any) -> Iterator[str]:
    """Every URL the model admin registers for one row."""
    for pattern in model_admin.get_urls():
        if not isinstance(pattern, URLPattern) or not pattern.name:
            continue
        regex = pattern.pattern.regex
        params = regex.groups
        name = f"admin:{pattern.name}"
        if params == 1:
            yield reverse(name, args=[pk])
        elif params == 2:
            for version in past_versions(model, pk):
                yield reverse(name, args=[pk, version])


def list_links(body: str) -> list[str]:
    """Links of the changelist's filter sidebar and date hierarchy (query strings)."""
    return sorted({unescape(href) for href in re.findall(r'href="(\?[^"]*)"', body)})


# ---------------------------------------------------------------- forms


class FormFields(HTMLParser):
    """The name/value pairs a browser would post for the page's main form."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select: tuple[str, list[str], bool, list[str]] | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.pairs.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = (name, [], "multiple" in a, [])
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select[3].append(value)
            if "selected" in a:
                self._select[1].append(value)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            name, chosen, multiple, options = self._select
            if not chosen and not multiple and options:
                chosen = [options[0]]
            self.pairs.extend((name, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.pairs.append((self._textarea, self._text.lstrip("\n")))
            self._textarea = None


def form_data(body: str) -> dict[str, list[str]]:
    parser = FormFields()
    parser.feed(body)
    data: dict[str, list[str]] = defaultdict(list)
    for name, value in parser.pairs:
        if name not in ("csrfmiddlewaretoken", "q", "language", "next"):
            data[name].append(value)
    return dict(data)


def form_models(model: type[Model], model_admin: Any, user: User, obj: Any) -> dict[str, Any]:
    """Form prefix → model of the rows it edits ("" is the main form)."""
    request = RequestFactory().get("/")
    request.user = user
    found: dict[str, Any] = {"": model}
    for formset, inline in model_admin.get_formsets_with_inlines(request, obj):
        found[formset.get_default_prefix()] = inline.model
    return found


INLINE_NAME = re.compile(r"^(?P<prefix>.+)-(?P<index>\d+)-(?P<field>[^-]+)$")


def relation_of(name: str, prefixes: dict[str, Any]) -> Any:
    """The relation field a posted name edits, if it is one (not an inline's parent link)."""
    match = INLINE_NAME.match(name)
    prefix, field_name = (match["prefix"], match["field"]) if match else ("", name)
    model = prefixes.get(prefix)
    if model is None:
        return None
    try:
        field = model._meta.get_field(field_name)
    except Exception:
        return None
    if not field.is_relation or field.related_model is None or field.primary_key:
        return None
    if prefix and field_name == "id":
        return None
    return field


def tampered(walk: Walk, data: dict[str, list[str]], prefixes: dict[str, Any]) -> Iterator[Any]:
    """``data`` with one relation at a time pointed at a row of lot B, or an inline
    row swapped for one of lot B's (its id)."""
    for name in data:
        match = INLINE_NAME.match(name)
        if match and match["field"] == "id" and match["prefix"] in prefixes:
            rows = sorted(walk.b_pks(prefixes[match["prefix"]]), key=str)
            if rows and data[name] != [""]:
                yield name, {**data, name: [str(rows[0])]}
            continue
        field = relation_of(name, prefixes)
        if field is None or (INLINE_NAME.match(name) and _is_parent_link(field, prefixes)):
            continue
        targets = sorted(walk.b_pks(field.related_model), key=str)
        if not targets:
            continue
        changed = dict(data)
        changed[name] = [str(targets[0])]
        yield name, changed


def _is_parent_link(field: Any, prefixes: dict[str, Any]) -> bool:
    return bool(field.related_model is prefixes[""] and (field.many_to_one or field.one_to_one))


def as_new(data: dict[str, list[str]], model: type[Model]) -> dict[str, list[str]]:
    """A change form's data made into an add form's: new codes, no inline rows of the old row."""
    fresh: dict[str, list[str]] = {}
    for name, values in data.items():
        match = INLINE_NAME.match(name)
        if name.endswith("-INITIAL_FORMS"):
            fresh[name] = ["0"]
            continue
        if match and match["field"] == "id":
            fresh[name] = [""]
            continue
        fresh[name] = values
        try:
            field: Any = model._meta.get_field(name)
        except Exception:
            continue
        if field.get_internal_type() in ("CharField", "SlugField") and not field.choices:
            fresh[name] = [f"{v}x" if v else v for v in values]
    return fresh


# ---------------------------------------------------------------- the walk


@pytest.mark.parametrize("who", ["operator", "agent"])
def test_every_page_of_the_back_office_hides_the_other_lot(walk: Walk, who: str) -> None:
    user = walk.a_operator if who == "operator" else walk.a_agent
    client = client_for(user)
    walked = 0
    assert_clean(client.get(reverse("admin:index")), "index")
    for app_label in {model._meta.app_label for model in admin.site._registry}:
        response = client.get(reverse("admin:app_list", args=[app_label]))
        assert_clean(response, f"{who} {app_label}")
    for model, model_admin in registry():
        info = _info(model)
        changelist = reverse(f"{info}_changelist")
        body = assert_clean(client.get(changelist), f"{who} {changelist}")
        for link in list_links(body):
            page = assert_clean(client.get(changelist + link), f"{who} {changelist}{link}")
            walked += 1
            if "__year=" in link:  # the date hierarchy: down to the months and days
                for deeper in list_links(page):
                    if "__month=" in deeper:
                        response = client.get(changelist + deeper)
                        assert_clean(response, f"{who} {changelist}{deeper}")
        for term in (*MARKERS, "ZZB福田", "B"):
            response = client.get(changelist, {"q": term})
            assert_clean(response, f"{who} search {term} {changelist}", echo=term)
        for link in _crafted_filters(model, walk):
            assert_clean(client.get(changelist + link), f"{who} {changelist}{link}")
        assert_clean(client.get(reverse(f"{info}_add")), f"{who} add {model._meta.label}")
        for pk in model._default_manager.values_list("pk", flat=True):
            for url in object_urls(model, model_admin, pk):
                response = client.get(url)
                assert_clean(response, f"{who} {url}")
                if pk in walk.b_pks(model):
                    assert response.status_code in (302, 403, 404), f"{who} opened {url}"
                walked += 1
    assert walked > 50
    assert_lot_b_intact(walk, who)


def _crafted_filters(model: type[Model], walk: Walk) -> Iterator[str]:
    """Filter queries naming lot B's rows, as a hand-typed URL would."""
    field: Any
    for field in model._meta.concrete_fields:
        if field.is_relation and walk.b_pks(field.related_model):
            pk = sorted(walk.b_pks(field.related_model), key=str)[0]
            yield f"?{field.name}__{field.target_field.name}__exact={pk}"


@pytest.mark.parametrize("who", ["operator", "agent"])
def test_autocomplete_offers_nothing_of_the_other_lot(walk: Walk, who: str) -> None:
    user = walk.a_operator if who == "operator" else walk.a_agent
    client = client_for(user)
    url = reverse("admin:autocomplete")
    asked = 0
    for source in apps.get_models():
        for field in source._meta.get_fields():
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            if field.related_model not in admin.site._registry:
                continue
            for term in ("", "ZZB", B_PLATE, "1"):
                query: dict[str, str] = {
                    "app_label": source._meta.app_label,
                    "model_name": str(source._meta.model_name),
                    "field_name": field.name,
                    "term": term,
                }
                response = client.get(url, query)
                assert_clean(response, f"{who} autocomplete {query}")
                if response.status_code == 200:
                    ids = {r["id"] for r in response.json()["results"]}
                    b = {str(pk) for pk in walk.b_pks(field.related_model)}
                    assert not ids & b, f"{who} autocomplete {query} offers lot B's rows"
                asked += 1
    assert asked > 10


@pytest.mark.parametrize("who", ["operator", "agent"])
def test_no_post_changes_the_other_lot_or_ties_a_row_to_it(walk: Walk, who: str) -> None:
    user = walk.a_operator if who == "operator" else walk.a_agent
    client = client_for(user)
    tried = 0
    for model, model_admin in registry():
        info = _info(model)
        b_pks = walk.b_pks(model)
        own = [pk for pk in model._default_manager.values_list("pk", flat=True) if pk not in b_pks]
        data: dict[str, list[str]] = {}
        for pk in own[:2]:
            url = reverse(f"{info}_change", args=[pk])
            response = client.get(url)
            if response.status_code != 200:
                continue
            data = form_data(response.content.decode())
            obj = model._default_manager.get(pk=pk)
            prefixes = form_models(model, model_admin, user, obj)
            for name, changed in tampered(walk, data, prefixes):
                response = client.post(url, changed)
                assert_clean(response, f"{who} POST {url} {name}")
                assert_lot_b_intact(walk, f"{who} POST {url} with {name} of lot B")
                tried += 1
            add = reverse(f"{info}_add")
            prefixes = form_models(model, model_admin, user, None)
            for name, changed in tampered(walk, as_new(data, model), prefixes):
                response = client.post(add, changed)
                assert response.status_code < 500, f"{who} POST {add} {name}"
                assert_lot_b_intact(walk, f"{who} POST {add} with {name} of lot B")
                tried += 1
        for pk in sorted(b_pks, key=str)[:2]:
            for url, payload in (
                (reverse(f"{info}_change", args=[pk]), data),
                (reverse(f"{info}_delete", args=[pk]), {"post": ["yes"]}),
            ):
                response = client.post(url, payload)
                assert response.status_code < 500, f"{who} POST {url}"
                assert_lot_b_intact(walk, f"{who} POST {url}")
                tried += 1
        if b_pks:
            request = RequestFactory().get("/")
            request.user = user
            for action in model_admin.get_actions(request):
                response = client.post(
                    reverse(f"{info}_changelist"),
                    {
                        "action": action,
                        "_selected_action": [str(pk) for pk in b_pks],
                        "post": "yes",
                        "reason": "walk",
                    },
                )
                assert response.status_code < 500, f"{who} action {action} on {model}"
                assert_lot_b_intact(walk, f"{who} action {action} on lot B's {model}")
                tried += 1
    assert tried > 0 if who == "agent" else tried > 20


@pytest.mark.parametrize("who", ["admin", "superuser"])
def test_every_page_answers_for_those_who_see_every_lot(walk: Walk, who: str) -> None:
    from eppark.accounts.models import Role
    from tests.integration.factories import staff

    user = User.objects.get(username="root") if who == "superuser" else staff("adm", Role.ADMIN, [])
    client = client_for(user)
    for model, model_admin in registry():
        info = _info(model)
        changelist = reverse(f"{info}_changelist")
        body = client.get(changelist).content.decode()
        for link in [*list_links(body), "?q=ZZB"]:
            response = client.get(changelist + link)
            assert response.status_code < 500, f"{who} {changelist}{link}"
        assert client.get(reverse(f"{info}_add")).status_code < 500
        for pk in model._default_manager.values_list("pk", flat=True):
            for url in object_urls(model, model_admin, pk):
                assert client.get(url).status_code < 500, f"{who} {url}"


def test_every_registered_admin_of_lot_data_is_scoped() -> None:
    """A model admin (or inline) registered later for rows of a lot scopes them too."""
    from eppark.accounts.admin_scoping import LotScopedAdminMixin, LotScopedInlineMixin
    from eppark.accounts.scoping import is_scoped_model

    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_active=True)
    for model, model_admin in registry():
        if is_scoped_model(model):
            assert isinstance(model_admin, LotScopedAdminMixin), model._meta.label
        for inline in model_admin.get_inline_instances(request):
            if is_scoped_model(inline.model):
                assert isinstance(inline, LotScopedInlineMixin), inline
