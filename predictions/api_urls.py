from django.urls import path

from predictions import api

urlpatterns = [
    path("jobs/<id:pk>/af3/", api.AlphaFold3View.as_view(), name="api-job-af3"),
    path("jobs/<id:pk>/af3/report/", api.AlphaFold3ReportView.as_view(), name="api-job-af3-report"),
    path("jobs/<id:pk>/pae/", api.PaeView.as_view(), name="api-job-pae"),
    path("jobs/<id:pk>/plddt/", api.PlddtView.as_view(), name="api-job-plddt"),
]
