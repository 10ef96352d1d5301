from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render

from msa.selectors import cache_stats


@staff_member_required
def cache_page(request):
    """The MSA cache's figures, for staff; clean-up and clear are in the admin."""
    context = {
        "stats": cache_stats(),
        "max_age_days": settings.PORTAL_MSA_CACHE_MAX_AGE_DAYS,
        "budget": settings.PORTAL_MSA_CACHE_BUDGET,
    }
    return render(request, "msa/cache.html", context)
