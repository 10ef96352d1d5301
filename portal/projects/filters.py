"""The filter every list of project contents shares: `?project=`."""

import django_filters
from django.http import Http404

from portal.ids import IdFilter
from portal.projects.models import Membership
from portal.projects.selectors import projects_visible_to


class InProjectFilterSet(django_filters.FilterSet):
    """`?project=<id>` limits a list to one of the user's projects; any other id is a 404,
    as everywhere else outside a user's projects. Needs the request (`request=`)."""

    project = IdFilter(method="in_project", label="Only what belongs to this project")

    def in_project(self, queryset, name, value):
        # Http404 is the API's 404 and a page's alike.
        if not projects_visible_to(self.request.user).filter(pk=value).exists():
            raise Http404("No such project.")
        return queryset.filter(project_id=value)


class MembershipFilter(InProjectFilterSet):
    class Meta:
        model = Membership
        fields = ["project"]
