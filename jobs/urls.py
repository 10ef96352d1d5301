from django.urls import path

from jobs import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("projects/<int:pk>/jobs/new/", views.job_new, name="job-new"),
    path("projects/<int:pk>/jobs/new/train/", views.train_new, name="train-new"),
]
