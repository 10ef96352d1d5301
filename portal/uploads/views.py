from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portal.projects.models import Role
from portal.projects.views import page_membership
from portal.uploads.formats import ACCEPTED


@login_required
def upload_new(request, pk):
    membership = page_membership(request, pk, role=Role.EDITOR)
    return render(
        request,
        "uploads/new.html",
        {
            "project": membership.project,
            "accepted": ACCEPTED,
            "max_bytes": settings.PORTAL_MAX_UPLOAD_BYTES,
        },
    )
