from django.urls import path

from msa import api

urlpatterns = [
    path("msa/cache/stats/", api.CacheStatsView.as_view(), name="api-msa-cache-stats"),
    path("msa/cache/cleanup/", api.CacheCleanupView.as_view(), name="api-msa-cache-cleanup"),
    path("msa/cache/clear/", api.CacheClearView.as_view(), name="api-msa-cache-clear"),
]
