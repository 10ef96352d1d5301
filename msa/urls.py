from django.urls import path

from msa import views

urlpatterns = [path("msa/cache/", views.cache_page, name="msa-cache")]
