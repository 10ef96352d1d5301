from django.urls import path

from jobs import api

urlpatterns = [
    path("jobs/", api.JobListView.as_view(), name="api-jobs"),
    path("jobs/batch/", api.JobBatchView.as_view(), name="api-jobs-batch"),
    path("jobs/<id:pk>/", api.JobDetailView.as_view(), name="api-job"),
    path("jobs/<id:pk>/cancel/", api.JobCancelView.as_view(), name="api-job-cancel"),
    path("jobs/<id:pk>/priority/", api.JobPriorityView.as_view(), name="api-job-priority"),
    path("jobs/<id:pk>/events/", api.JobEventsView.as_view(), name="api-job-events"),
    path("jobs/<id:pk>/artifacts/", api.ArtifactListView.as_view(), name="api-job-artifacts"),
    path(
        "jobs/<id:pk>/artifacts/<path:name>",
        api.ArtifactContentView.as_view(),
        name="api-job-artifact",
    ),
    path("jobs/<id:pk>/archive/", api.ArchiveView.as_view(), name="api-job-archive"),
    path("jobs/<id:pk>/log/", api.LogView.as_view(), name="api-job-log"),
]
