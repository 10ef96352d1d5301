from portal.projects.models import Role
from portal.projects.selectors import member_object
from portal.uploads.models import Upload


def uploads_visible_to(user):
    if not user.is_authenticated:
        return Upload.objects.none()
    return Upload.objects.filter(project__memberships__user=user).select_related(
        "project", "created_by"
    )


def upload_for(user, upload_id, *, role: str = Role.VIEWER) -> Upload:
    """An upload in one of the user's projects (404 otherwise), if their role allows `role`."""
    return member_object(uploads_visible_to(user), user, upload_id, role=role, what="upload")
