"""State changes of projects and their memberships."""

from django.contrib.auth import get_user_model
from django.db import transaction

from portal.errors import PortalError
from portal.projects.models import Membership, Project, Role


def project_create(*, name: str, by, description: str = "") -> Project:
    """Make a project; its creator becomes its owner."""
    name = (name or "").strip()
    if not name:
        raise PortalError("A project needs a name.", code="project_name_required")
    with transaction.atomic():
        project = Project.objects.create(name=name[:200], description=description, created_by=by)
        Membership.objects.create(project=project, user=by, role=Role.OWNER)
    return project


def project_update(*, project: Project, name: str | None = None, description: str | None = None):
    if name is not None:
        name = name.strip()
        if not name:
            raise PortalError("A project needs a name.", code="project_name_required")
        project.name = name[:200]
    if description is not None:
        project.description = description
    project.save(update_fields=["name", "description"])
    return project


def project_delete(*, project: Project) -> None:
    project.delete()


def member_add(*, project: Project, username: str, role: str) -> Membership:
    """Give a user a role in the project (or change the role they have)."""
    if role not in Role.values:
        raise PortalError(
            f"Unknown role '{role}'; choose one of {', '.join(Role.values)}.", code="role_invalid"
        )
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise PortalError(f"There is no active user '{username}'.", code="user_unknown")
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            project=project, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            return member_set_role(membership=membership, role=role)
    return membership


def _other_owners(membership: Membership) -> bool:
    return (
        Membership.objects.filter(project_id=membership.project_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


def member_set_role(*, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise PortalError(
            f"Unknown role '{role}'; choose one of {', '.join(Role.values)}.", code="role_invalid"
        )
    with transaction.atomic():
        # Lock the project's owners so two owners demoting each other cannot both succeed.
        list(
            Membership.objects.select_for_update().filter(
                project_id=membership.project_id, role=Role.OWNER
            )
        )
        if membership.role == Role.OWNER and role != Role.OWNER and not _other_owners(membership):
            raise PortalError(
                "A project keeps at least one owner; make someone else owner first.",
                code="last_owner",
            )
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        list(
            Membership.objects.select_for_update().filter(
                project_id=membership.project_id, role=Role.OWNER
            )
        )
        if membership.role == Role.OWNER and not _other_owners(membership):
            raise PortalError(
                "A project keeps at least one owner; make someone else owner first.",
                code="last_owner",
            )
        membership.delete()
