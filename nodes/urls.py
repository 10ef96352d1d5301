from django.urls import path

from nodes import views

urlpatterns = [path("nodes/", views.node_pool, name="nodes")]
