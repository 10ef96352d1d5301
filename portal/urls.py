from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import errorpages, metrics
from portal.accounts import views as accounts
from portal.projects import views as projects
from portal.uploads import views as uploads

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", accounts.tokens, name="tokens"),
    path("accounts/tokens/<id:pk>/revoke/", accounts.token_revoke_view, name="token-revoke"),
    path("projects/", projects.project_list, name="projects"),
    path("projects/<id:pk>/", projects.project_detail, name="project"),
    path(
        "projects/<id:pk>/members/<id:member_pk>/",
        projects.member_change,
        name="project-member",
    ),
    path("projects/<id:pk>/uploads/new/", uploads.upload_new, name="upload-new"),
    path("admin/", admin.site.urls),
    path("metrics", metrics.metrics_view, name="metrics"),
    # The other apps' pages (the dashboard is the jobs app's), named by module.
    path("", include("jobs.urls")),
    path("", include("nodes.urls")),
    path("", include("msa.urls")),
    path("api/v1/", include("portal.api_urls")),
    # The other apps' APIs, named by module so the portal package imports none of them.
    path("api/v1/", include("jobs.api_urls")),
    path("api/v1/", include("nodes.api_urls")),
    path("api/v1/", include("msa.api_urls")),
    path("api/v1/", include("predictions.api_urls")),
    path("api/v1/", include("designs.api_urls")),
    path("api/v1/", include("screens.api_urls")),
]

handler400 = errorpages.bad_request
handler403 = errorpages.permission_denied
handler404 = errorpages.page_not_found
handler500 = errorpages.server_error
