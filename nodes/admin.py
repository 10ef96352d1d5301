from django.contrib import admin
from django.utils.html import format_html_join

from nodes.models import Node
from nodes.selectors import running_jobs, with_running_count
from nodes.services import node_disable, node_drain, node_enable


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "state",
        "address",
        "gpu_summary",
        "cpu_slots",
        "running",
        "last_heartbeat_at",
        "queue",
    ]
    list_filter = ["enabled", "draining"]
    search_fields = ["name", "hostname", "address"]
    readonly_fields = [
        "queue",
        "token_prefix",
        "address",
        "hostname",
        "boot_id",
        "gpus",
        "cpu_percent",
        "memory_total",
        "memory_used",
        "engines",
        "warm_engines",
        "last_heartbeat_at",
        "running_job_list",
        "created_at",
    ]
    exclude = ["token_hash"]
    actions = ["enable", "disable", "drain"]

    def has_add_permission(self, request):
        # A node's token is shown once, by `manage.py createnode`.
        return False

    def get_queryset(self, request):
        return with_running_count(super().get_queryset(request))

    @admin.display(description="status")
    def state(self, node):
        return node.status(busy=getattr(node, "running_count", 0) > 0)

    @admin.display(description="running jobs", ordering="running_count")
    def running(self, node):
        return node.running_count

    @admin.display(description="GPUs")
    def gpu_summary(self, node):
        if not node.gpus:
            return "none"
        return ", ".join(
            f"{g.get('name', '?')} {(g.get('memory_used') or 0) / 2**30:.0f}/"
            f"{(g.get('memory_total') or 0) / 2**30:.0f} GiB {g.get('utilization') or 0:.0f}%"
            for g in node.gpus
        )

    @admin.display(description="running jobs")
    def running_job_list(self, node):
        jobs = running_jobs(node)
        return (
            format_html_join(
                ", ",
                '<a href="/admin/jobs/job/{}/change/">#{} {}</a>',
                ((j.pk, j.pk, j.name) for j in jobs),
            )
            or "none"
        )

    def _act(self, request, queryset, service, verb):
        for node in queryset:
            service(node=node, by=request.user)
        self.message_user(request, f"{verb.capitalize()} {queryset.count()} node(s).")

    @admin.action(description="Enable: take back into service")
    def enable(self, request, queryset):
        self._act(request, queryset, node_enable, "enabled")

    @admin.action(description="Disable: no new jobs; running ones go back to the queue")
    def disable(self, request, queryset):
        self._act(request, queryset, node_disable, "disabled")

    @admin.action(description="Drain: no new jobs; running ones finish")
    def drain(self, request, queryset):
        self._act(request, queryset, node_drain, "drained")
