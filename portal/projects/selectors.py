"""Reading projects, always through what a user is a member of."""

from django.db.models import OuterRef, Subquery
from rest_framework.exceptions import NotFound, PermissionDenied

from portal.projects.models import Membership, Project, Role

ROLE_VERBS = {
    Role.EDITOR: "Viewers cannot change this project; ask an owner to make you an editor.",
    Role.OWNER: "Only an owner of the project may do this.",
}


def projects_visible_to(user):
    """The user's projects, each annotated with `my_role`."""
    if not user.is_authenticated:
        return Project.objects.none()
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return Project.objects.filter(memberships__user=user).annotate(my_role=Subquery(role))


def membership_for(user, project_id, *, role: str = Role.VIEWER) -> Membership:
    """The user's membership of a project that allows `role`.

    A project the user does not belong to does not exist for them (404, whatever the id);
    a member whose role is too low is told so (403).
    """
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        raise NotFound("No such project.") from None
    membership = (
        Membership.objects.select_related("project")
        .filter(project_id=project_id, user=user)
        .first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("No such project.")
    if not membership.allows(role):
        raise PermissionDenied(ROLE_VERBS.get(role, "Your role does not allow this."))
    return membership


def project_for(user, project_id, *, role: str = Role.VIEWER) -> Project:
    return membership_for(user, project_id, role=role).project


def memberships_of(project):
    return project.memberships.select_related("user").order_by("user__username")


def member_object(visible, user, pk, *, role: str = Role.VIEWER, what: str):
    """Object `pk` of `visible` (a queryset already limited to the user's projects): a 404 if
    it is not there, a 403 if the user's role there does not allow `role`."""
    try:
        found = visible.get(pk=int(pk))
    except (visible.model.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"No such {what}.") from None
    if role != Role.VIEWER:
        membership_for(user, found.project_id, role=role)
    return found
