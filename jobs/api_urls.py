from django.urls import path

from jobs import api

urlpatterns = [
    path("jobs/", api.JobListView.as_view(), name="api-jobs"),
    path("jobs/<int:pk>/", api.JobDetailView.as_view(), name="api-job"),
    path("jobs/<int:pk>/cancel/", api.JobCancelView.as_view(), name="api-job-cancel"),
    path("jobs/<int:pk>/priority/", api.JobPriorityView.as_view(), name="api-job-priority"),
    path("jobs/<int:pk>/events/", api.JobEventsView.as_view(), name="api-job-events"),
    path("jobs/<int:pk>/artifacts/", api.ArtifactListView.as_view(), name="api-job-artifacts"),
    path(
        "jobs/<int:pk>/artifacts/<path:name>",
        api.ArtifactContentView.as_view(),
        name="api-job-artifact",
    ),
    path("jobs/<int:pk>/archive/", api.ArchiveView.as_view(), name="api-job-archive"),
]
