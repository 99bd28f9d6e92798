"""The back office's admin site: Django's, with autocomplete scoped to the user's lots."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from eppark.accounts.scoping import scope


class LotScopedAutocompleteJsonView(AutocompleteJsonView):
    """Autocomplete answers with the target admin's rows narrowed to the user's lots.

    Django's view trusts the target model admin alone; this one also applies the
    scoping every form field gets, so a target admin that forgot to scope leaks
    nothing through another model's field.
    """

    def get_queryset(self) -> QuerySet[Any]:
        """The target admin's search results, of the user's lots only."""
        return scope(super().get_queryset(), self.request.user)


class BackOfficeSite(admin.AdminSite):
    """EP Park's back office."""

    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        """Autocomplete scoped to the user's lots."""
        view = LotScopedAutocompleteJsonView.as_view(admin_site=self)
        return cast(HttpResponse, view(request))
