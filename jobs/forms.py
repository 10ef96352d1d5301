"""The new-job page's form: what every job has (name, priority, inputs), and the kind's
parameters, built from the serializer the kind declares them with (`JobKind.Params`).

The form only shows the fields and reads what was typed; the parameters are validated, as for
the API, by the kind itself when the job is submitted (`job_submit`), and what it refuses is
shown beside the field it names.
"""

from django import forms
from rest_framework import fields as drf
from rest_framework.fields import empty
from rest_framework.serializers import ListSerializer

from jobs.models import Priority


class OptionalJSONField(forms.JSONField):
    """A JSON parameter's box: empty when it has no value (Django's own writes `null`)."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


def form_field(field: drf.Field) -> forms.Field:
    """The form field that shows a serializer field."""
    common = {
        "label": field.label,
        "help_text": field.help_text or "",
        "required": field.required and field.default is empty,
        "initial": None if field.default is empty else field.default,
    }
    if isinstance(field, drf.BooleanField):
        return forms.BooleanField(**{**common, "required": False})
    if isinstance(field, drf.JSONField):
        return OptionalJSONField(widget=forms.Textarea(attrs={"rows": 4}), **common)
    if isinstance(field, drf.ListField | ListSerializer):  # a list, written as JSON: [1, 2]
        return OptionalJSONField(widget=forms.Textarea(attrs={"rows": 2}), **common)
    if isinstance(field, drf.ChoiceField):
        choices = list(field.choices.items())
        if not field.required and field.default is empty:
            choices = [("", "(default)"), *choices]  # left out: the kind decides
        return forms.ChoiceField(choices=choices, **common)
    if isinstance(field, drf.IntegerField):
        return forms.IntegerField(min_value=field.min_value, max_value=field.max_value, **common)
    if isinstance(field, drf.FloatField):
        return forms.FloatField(min_value=field.min_value, max_value=field.max_value, **common)
    widget = (
        forms.Textarea(attrs={"rows": 3})
        if field.style.get("base_template") == ("textarea.html")
        else None
    )
    return forms.CharField(max_length=getattr(field, "max_length", None), widget=widget, **common)


class JobForm(forms.Form):
    """A job of one kind: name, priority, its inputs (uploads of the kinds it takes) and the
    kind's own parameters."""

    name = forms.CharField(max_length=200, required=False)
    priority = forms.ChoiceField(choices=[(p, p) for p in Priority.labels], initial="normal")

    def __init__(self, *args, kind, uploads, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        usable = [u for u in uploads if not kind.input_kinds or u.kind in kind.input_kinds]
        choices = [(u.pk, f"{u.name} ({u.kind}, {u.size:,} bytes)") for u in usable]
        if kind.max_inputs == 1:
            required = kind.min_inputs > 0
            self.fields["inputs"] = forms.ChoiceField(
                choices=choices if required else [("", "none"), *choices],
                required=required,
                label="Input",
            )
        elif kind.max_inputs > 1:
            self.fields["inputs"] = forms.MultipleChoiceField(
                choices=choices, required=kind.min_inputs > 0, widget=forms.CheckboxSelectMultiple
            )
        self.param_names = []
        for name, field in kind.Params().fields.items():
            self.fields[name] = form_field(field)
            self.param_names.append(name)

    def params(self) -> dict:
        """The parameters as typed (the kind validates them)."""
        return {
            name: self.cleaned_data[name]
            for name in self.param_names
            if self.cleaned_data.get(name) not in (None, "")
        }

    def input_ids(self) -> list[int]:
        chosen = self.cleaned_data.get("inputs") or []
        return [int(i) for i in ([chosen] if isinstance(chosen, str) else chosen) if i]

    def show_errors(self, fields: dict) -> None:
        """Put what the kind refused (`params.<name>`, `inputs`, …) beside its field."""
        for name, messages in fields.items():
            if name == "params" and isinstance(messages, dict):
                self.show_errors(messages)
                continue
            target = name if name in self.fields else None
            for message in _texts(messages):
                self.add_error(target, message)


def _texts(messages) -> list[str]:
    """What a serializer said of a field, as sentences: a nested field's (a list of chains…)
    each with where it is (`1: id: …`)."""
    if isinstance(messages, dict):
        return [
            text if key == "non_field_errors" else f"{key}: {text}"
            for key, value in messages.items()
            for text in _texts(value)
        ]
    if isinstance(messages, list):
        return [text for message in messages for text in _texts(message)]
    return [str(messages)]
