import django_filters
from django import forms

from portal.projects.filters import InProjectFilterSet
from portal.uploads.models import Upload


class Sha256Field(forms.RegexField):
    def __init__(self, **kwargs):
        super().__init__(
            regex=r"^[0-9a-fA-F]{64}$",
            error_messages={"invalid": "A SHA-256 digest is 64 hexadecimal digits."},
            **kwargs,
        )


class Sha256Filter(django_filters.CharFilter):
    field_class = Sha256Field


class UploadFilter(InProjectFilterSet):
    sha256 = Sha256Filter(method="with_digest", label="Only uploads with these bytes")

    class Meta:
        model = Upload
        fields = ["project", "sha256"]

    def with_digest(self, queryset, name, value):
        return queryset.filter(sha256=value.lower())
