from django.urls import path

from screens import api

urlpatterns = [
    path("jobs/<id:pk>/ligands/", api.LigandListView.as_view(), name="api-job-ligands"),
]
