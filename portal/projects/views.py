from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as PageDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.exceptions import NotFound, PermissionDenied

from portal.errors import PortalError
from portal.projects.models import Membership, Role
from portal.projects.selectors import membership_for, memberships_of, projects_visible_to
from portal.projects.services import member_add, member_remove, member_set_role, project_create


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


def page_membership(request, project_id, role=Role.VIEWER) -> Membership:
    """As `membership_for`, answered the way a page answers: 404, or 403 with a message."""
    try:
        return membership_for(request.user, project_id, role=role)
    except NotFound:
        raise Http404("No such project.") from None
    except PermissionDenied as exc:
        raise PageDenied(str(exc.detail)) from None


@login_required
def project_list(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = project_create(by=request.user, **form.cleaned_data)
        return redirect("project", pk=project.pk)
    return render(
        request,
        "projects/list.html",
        {"projects": projects_visible_to(request.user), "form": form},
    )


@login_required
def project_detail(request, pk):
    membership = page_membership(request, pk)
    project = membership.project
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        page_membership(request, pk, role=Role.OWNER)
        if form.is_valid():
            try:
                member_add(project=project, **form.cleaned_data)
            except PortalError as exc:
                form.add_error(None, str(exc.detail))
            else:
                messages.success(request, f"{form.cleaned_data['username']} is now a member.")
                return redirect("project", pk=pk)
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "membership": membership,
            "can_edit": membership.allows(Role.EDITOR),
            "is_owner": membership.allows(Role.OWNER),
            "members": memberships_of(project),
            "uploads": project.uploads.select_related("created_by"),
            "form": form,
            "roles": Role.choices,
        },
    )


@login_required
@require_POST
def member_change(request, pk, member_pk):
    page_membership(request, pk, role=Role.OWNER)
    membership = Membership.objects.filter(project_id=pk, pk=member_pk).first()
    if membership is None:
        raise Http404("No such member.")
    try:
        if request.POST.get("action") == "remove":
            member_remove(membership=membership)
            messages.success(request, f"{membership.user.username} was removed.")
        else:
            member_set_role(membership=membership, role=request.POST.get("role", ""))
            messages.success(request, f"{membership.user.username} is now {membership.role}.")
    except PortalError as exc:
        messages.error(request, str(exc.detail))
    return redirect("project", pk=pk)
