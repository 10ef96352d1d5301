import django_filters

from jobs.models import Job, State
from portal.projects.filters import InProjectFilterSet


class JobFilter(InProjectFilterSet):
    """The job list's filters, for the API and the page alike."""

    state = django_filters.ChoiceFilter(choices=State.choices)
    kind = django_filters.CharFilter(max_length=40)

    class Meta:
        model = Job
        fields = ["project", "state", "kind"]
