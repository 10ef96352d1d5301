import logging

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import path
from django.views.decorators.http import require_POST

from msa.models import MsaEntry
from msa.selectors import cache_stats
from msa.services import cache_cleanup, cache_clear, remove_entries

log = logging.getLogger(__name__)


@admin.register(MsaEntry)
class MsaEntryAdmin(admin.ModelAdmin):
    list_display = [
        "short_key",
        "source",
        "chains",
        "paired",
        "size",
        "hits",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["source", "paired"]
    search_fields = ["key", "database"]
    ordering = ["-last_used_at"]
    actions = ["remove_with_files"]

    def has_add_permission(self, request):
        return False  # entries are what the portal computed

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would leave the files behind
        return actions

    @admin.display(description="key")
    def short_key(self, entry):
        return entry.key[:16]

    @admin.display(description="chains")
    def chains(self, entry):
        return ", ".join(f"{len(s)} aa" for s in entry.sequences)

    @admin.action(description="Remove the selected entries and their files", permissions=["delete"])
    def remove_with_files(self, request, queryset):
        result = remove_entries(list(queryset.values_list("pk", flat=True)))
        self._report(request, result)

    def delete_model(self, request, obj):
        self.remove_with_files(request, MsaEntry.objects.filter(pk=obj.pk))

    def _report(self, request, result):
        log.info("MSA cache, by %s in the admin: %s", request.user.username, result)
        messages.success(
            request,
            f"Removed {result['removed']} entries, {filesizeformat(result['freed'])} freed.",
        )

    def get_urls(self):
        def operation(service):
            @require_POST
            def view(request):
                if not self.has_delete_permission(request):
                    raise PermissionDenied
                self._report(request, service())
                return redirect("admin:msa_msaentry_changelist")

            return self.admin_site.admin_view(view)

        return [
            path("cleanup/", operation(cache_cleanup), name="msa_cache_cleanup"),
            path("clear/", operation(cache_clear), name="msa_cache_clear"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "stats": cache_stats(),
            "max_age_days": settings.PORTAL_MSA_CACHE_MAX_AGE_DAYS,
            "budget": settings.PORTAL_MSA_CACHE_BUDGET,
        }
        return super().changelist_view(request, extra_context)
