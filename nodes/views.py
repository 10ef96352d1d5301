from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render

from nodes.pool import pool_snapshot


@staff_member_required
def node_pool(request):
    return render(
        request,
        "nodes/pool.html",
        {"nodes": pool_snapshot(), "offline_after": settings.PORTAL_NODE_OFFLINE_AFTER},
    )
