"""Ids of stored things, bounded to what the database can hold, wherever they come in.

Every table's primary key is a signed 64-bit integer. A larger number sent as an id (in a URL,
a query string, a JSON body or a form field) would reach the database and fail there: SQLite
raises OverflowError, PostgreSQL an out-of-range error. So an id is checked once, at the edge,
by one of the three types here, and anything out of range is a clear 4xx.

- `IdField`: a DRF serializer field (JSON and form bodies).
- `IdFilter`: a django-filter filter (query strings of list endpoints and pages).
- `IdConverter`: the URL converter registered as `<id:...>`; a path with an id out of range
  matches no route and is a 404.
- `parse_id`: anything else (a WebSocket's query string).
"""

import django_filters
from django import forms
from django.urls import register_converter
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_ID = 2**63 - 1


def parse_id(text: str, *, minimum: int = 1) -> int | None:
    """An id written in decimal, or None if it is not one (or out of range)."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if minimum <= number <= MAX_ID else None


class IdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class IdFormField(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    field_class = IdFormField


class IdConverter:
    # At most 19 digits, so the regular expression itself refuses absurdly long numbers.
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError("id out of range")  # the route does not match: a 404
        return number

    def to_url(self, value) -> str:
        return str(int(value))


register_converter(IdConverter, "id")
