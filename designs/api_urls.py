from django.urls import path

from designs import api

urlpatterns = [
    path("jobs/<id:pk>/candidates/", api.CandidateListView.as_view(), name="api-job-candidates"),
]
