from django.contrib import admin, messages

from jobs.models import Artifact, Job, JobTransition, Priority, State
from jobs.services import job_cancel, job_requeue, job_resubmit, job_set_priority
from portal.errors import PortalError


class TransitionInline(admin.TabularInline):
    model = JobTransition
    extra = 0
    can_delete = False
    fields = ["at", "from_state", "to_state", "reason", "by", "attempt", "node"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    can_delete = False
    fields = ["name", "size", "sha256", "placement"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "kind",
        "state",
        "priority",
        "owner",
        "project",
        "node",
        "gpu",
        "attempt",
        "created_at",
        "started_at",
    ]
    list_filter = ["state", "kind", "priority", "node"]
    search_fields = ["name", "owner__username", "project__name", "id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [TransitionInline, ArtifactInline]
    actions = ["cancel", "requeue", "priority_high", "priority_normal", "priority_low"]

    def has_add_permission(self, request):
        return False

    def _each(self, request, queryset, act, verb):
        done = 0
        for job in queryset:
            try:
                act(job)
            except PortalError as exc:
                self.message_user(request, f"#{job.pk}: {exc.detail}", messages.WARNING)
                continue
            self.log_change(request, job, verb)
            done += 1
        self.message_user(request, f"{verb.capitalize()}: {done} job(s).")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        self._each(request, queryset, lambda job: job_cancel(job=job, by=request.user), "cancelled")

    @admin.action(description="Re-queue (waiting or running: place again; finished: run anew)")
    def requeue(self, request, queryset):
        def act(job):
            if job.state in (State.SUCCEEDED, State.FAILED, State.CANCELLED):
                new = job_resubmit(job=job, by=request.user)
                self.message_user(request, f"#{job.pk} runs anew as #{new.pk}.")
            elif not job_requeue(
                job=job, reason=f"re-queued by {request.user.username}", by=request.user
            ):
                raise PortalError("it is not placed or running")

        self._each(request, queryset, act, "re-queued")

    def _priority(self, request, queryset, priority):
        self._each(
            request,
            queryset,
            lambda job: job_set_priority(job=job, priority=priority, by=request.user),
            f"priority set to {priority}",
        )

    @admin.action(description="Priority: high")
    def priority_high(self, request, queryset):
        self._priority(request, queryset, Priority.HIGH.label)

    @admin.action(description="Priority: normal")
    def priority_normal(self, request, queryset):
        self._priority(request, queryset, Priority.NORMAL.label)

    @admin.action(description="Priority: low")
    def priority_low(self, request, queryset):
        self._priority(request, queryset, Priority.LOW.label)
