from django.urls import path

from jobs import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<id:pk>/", views.job_detail, name="job"),
    path("projects/<id:pk>/jobs/new/", views.job_new, name="job-new"),
    path("projects/<id:pk>/jobs/new/<slug:kind>/", views.job_new_kind, name="job-new-kind"),
]
