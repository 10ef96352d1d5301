"""Routes of the REST API under /api/v1/."""

from django.urls import path
from drf_spectacular.views import SpectacularSwaggerView

from portal.accounts.api import TokenDetailView, TokenListView
from portal.health import HealthView, HealthWithoutSlash
from portal.projects.api import (
    MembershipDetailView,
    MembershipListView,
    ProjectDetailView,
    ProjectListView,
)
from portal.schema import SchemaView
from portal.uploads.api import (
    UploadContentView,
    UploadDetailView,
    UploadListView,
    UploadPreviewView,
)

urlpatterns = [
    path("health/", HealthView.as_view(), name="api-health"),
    # As SPEC and probes write it, without the slash: answered, not redirected (a probe that
    # does not follow redirects would call the portal down).
    path("health", HealthWithoutSlash.as_view()),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("tokens/", TokenListView.as_view(), name="api-tokens"),
    path("tokens/<id:pk>/", TokenDetailView.as_view(), name="api-token"),
    path("projects/", ProjectListView.as_view(), name="api-projects"),
    path("projects/<id:pk>/", ProjectDetailView.as_view(), name="api-project"),
    path("memberships/", MembershipListView.as_view(), name="api-memberships"),
    path("memberships/<id:pk>/", MembershipDetailView.as_view(), name="api-membership"),
    path("uploads/", UploadListView.as_view(), name="api-uploads"),
    path("uploads/<id:pk>/", UploadDetailView.as_view(), name="api-upload"),
    path("uploads/<id:pk>/content", UploadContentView.as_view(), name="api-upload-content"),
    path("uploads/<id:pk>/preview/", UploadPreviewView.as_view(), name="api-upload-preview"),
]
