from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.archive import archive_stream, log_lines
from jobs.filters import JobFilter
from jobs.kinds import registry
from jobs.models import Artifact, Job, JobTransition, Priority
from jobs.selectors import events_after, job_for, jobs_visible_to, waiting
from jobs.services import (
    Submission,
    job_cancel,
    job_set_priority,
    job_store,
    job_submit_batch,
    validate_submissions,
)
from portal.idempotency import idempotent
from portal.ids import MAX_ID, IdField
from portal.projects.models import Role
from portal.projects.selectors import project_for

MAX_EVENTS = 1000
MAX_BATCH = 1000  # jobs in one batch submission


class TransitionSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.username", default=None, allow_null=True)

    class Meta:
        model = JobTransition
        fields = ["from_state", "to_state", "reason", "by", "attempt", "node", "at"]


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    priority = serializers.CharField(source="priority_name")
    node = serializers.CharField(source="node.name", default=None, allow_null=True)
    inputs = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "project",
            "kind",
            "name",
            "owner",
            "params",
            "inputs",
            "parent",
            "priority",
            "state",
            "node",
            "gpu",
            "attempt",
            "progress",
            "progress_message",
            "error",
            "warnings",
            "metrics",
            "cancel_requested",
            "time_limit",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
        ]

    def get_inputs(self, job) -> list[int]:
        known = getattr(job, "input_ids", None)  # a job just submitted knows them
        return known if known is not None else [i.upload_id for i in job.job_inputs.all()]


class JobDetailSerializer(JobSerializer):
    transitions = TransitionSerializer(many=True, read_only=True)
    waiting = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "transitions", "waiting"]

    def get_waiting(self, job) -> str:
        """A waiting job's place in the queue and what it waits for ("" for any other job)."""
        return waiting(job)


class JobInput(serializers.Serializer):
    project = IdField()
    kind = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    params = serializers.JSONField(required=False, default=dict)
    inputs = serializers.ListField(child=IdField(), required=False, default=list, max_length=50)
    priority = serializers.ChoiceField(choices=Priority.labels, required=False, default="normal")
    force = serializers.BooleanField(required=False, default=False)
    time_limit = serializers.IntegerField(
        required=False, min_value=1, allow_null=True, default=None
    )


def submissions_from(user, spec) -> list[Submission]:
    """A job submission as the API takes it (`JobInput`), by `user` (an editor of its project),
    checked: a 400, 403 or 404 naming the problem if it is refused; several where its kind
    splits it (one job per record of a file). The create endpoint, the batch endpoint and
    `manage.py submit` all read one this way."""
    data = JobInput(data=spec)
    data.is_valid(raise_exception=True)
    values = dict(data.validated_data)
    project = project_for(user, values.pop("project"), role=Role.EDITOR)
    return validate_submissions(project=project, by=user, **values)


def submissions() -> dict[str, type[serializers.Serializer]]:
    """The request body of POST /api/v1/jobs/ for each kind, for the schema: the common
    fields, and `params` as the kind declares them."""
    return {
        name: type(
            f"{name.title().replace('_', '')}JobInput",
            (JobInput,),
            {
                "__module__": __name__,
                "kind": serializers.ChoiceField(choices=[name]),
                "params": kind.Params(required=False),
            },
        )
        for name, kind in sorted(registry().items())
    }


class PriorityInput(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.labels)


class EventQuery(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=MAX_ID, default=0, help_text="Only events with a larger id"
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_EVENTS, default=MAX_EVENTS, help_text="At most this many"
    )


class EventPage(serializers.Serializer):
    results = serializers.ListField(child=serializers.DictField())
    last_id = serializers.IntegerField()
    more = serializers.BooleanField()
    state = serializers.CharField()


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ["name", "size", "sha256", "created_at"]


class BatchAnswer(serializers.Serializer):
    results = JobSerializer(many=True)


class JobListView(ListAPIView):
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self):
        return jobs_visible_to(self.request.user).prefetch_related("job_inputs")

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="JobSubmission",
            serializers=submissions,
            resource_type_field_name="kind",
        ),
        responses={
            201: PolymorphicProxySerializer(
                component_name="JobSubmitted",
                serializers=[JobSerializer, BatchAnswer],
                resource_type_field_name=None,
            ),
            200: JobSerializer,
        },
        summary="Submit a job (200 with the existing one when the same work is queued or running)",
        description=(
            "A submission its kind splits into several jobs (one per record of a file, where "
            "a kind's parameters ask for it) answers as the batch endpoint does, "
            "`{results: [...]}`, all created or none."
        ),
    )
    @idempotent
    def post(self, request):
        submissions = submissions_from(request.user, request.data)
        if any(submission.part for submission in submissions):
            jobs = [job for job, _ in job_submit_batch(submissions)]
            return Response(
                {"results": JobSerializer(jobs, many=True).data}, status=status.HTTP_201_CREATED
            )
        job, created = job_store(submissions[0])
        return Response(
            JobSerializer(job).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class BatchInput(serializers.Serializer):
    jobs = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"Up to {MAX_BATCH} job submissions, each as `POST /api/v1/jobs/` takes it.",
    )


class BatchInvalid(ValidationError):
    """Items of a batch refused, by index (`fields.jobs.<index>`); nothing was created."""

    default_code = "batch_invalid"


def _refusal(exc: APIException) -> dict:
    """An item's refusal as the fields it names (a code for one that names none)."""
    if isinstance(exc, ValidationError) and isinstance(exc.detail, dict):
        return exc.detail
    codes = exc.get_codes()
    return {codes if isinstance(codes, str) else "invalid": [str(exc.detail)]}


class JobBatchView(APIView):
    @extend_schema(
        request=BatchInput,
        responses={201: BatchAnswer},
        summary=f"Submit up to {MAX_BATCH} jobs: all are checked first, then all or none created",
    )
    @idempotent
    def post(self, request):
        data = BatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        checked, refused = [], {}
        for index, spec in enumerate(data.validated_data["jobs"]):
            try:
                checked.extend(submissions_from(request.user, spec))
            except APIException as exc:
                refused[str(index)] = _refusal(exc)
        if refused:
            raise BatchInvalid({"jobs": refused})
        jobs = [job for job, _ in job_submit_batch(checked)]
        return Response(
            {"results": JobSerializer(jobs, many=True).data}, status=status.HTTP_201_CREATED
        )


class JobDetailView(APIView):
    @extend_schema(responses=JobDetailSerializer)
    def get(self, request, pk):
        return Response(JobDetailSerializer(job_for(request.user, pk)).data)


class JobCancelView(APIView):
    @extend_schema(request=None, responses=JobSerializer, summary="Cancel a job (editors)")
    def post(self, request, pk):
        job = job_cancel(job=job_for(request.user, pk, role=Role.EDITOR), by=request.user)
        return Response(JobSerializer(job).data)


class JobPriorityView(APIView):
    @extend_schema(
        request=PriorityInput, responses=JobSerializer, summary="Change a waiting job's priority"
    )
    def post(self, request, pk):
        job = job_for(request.user, pk, role=Role.EDITOR)
        data = PriorityInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_set_priority(job=job, priority=data.validated_data["priority"], by=request.user)
        return Response(JobSerializer(job).data)


class JobEventsView(APIView):
    @extend_schema(
        parameters=[EventQuery],
        responses=EventPage,
        summary="A job's events after an id, oldest first",
    )
    def get(self, request, pk):
        job = job_for(request.user, pk)
        query = EventQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        events = events_after(job, after, limit + 1)
        more = len(events) > limit
        events = events[:limit]
        return Response(
            {
                "results": [e.as_message() for e in events],
                "last_id": events[-1].seq if events else after,
                "more": more,
                "state": job.state,
            }
        )


class ArtifactListView(APIView):
    @extend_schema(responses=ArtifactSerializer(many=True))
    def get(self, request, pk):
        job = job_for(request.user, pk)
        return Response(ArtifactSerializer(job.artifacts.all(), many=True).data)


class ArtifactContentView(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): bytes}, summary="An artifact's bytes"
    )
    def get(self, request, pk, name):
        job = job_for(request.user, pk)
        artifact = job.artifacts.filter(name=name).first()
        if artifact is None:
            raise NotFound("No such artifact.")
        response = FileResponse(
            default_storage.open(artifact.storage_key, "rb"),
            as_attachment=True,
            filename=name.rsplit("/", 1)[-1],
            content_type="application/octet-stream",  # bytes to save, never a page to render
        )
        response["Content-Length"] = artifact.size
        response["ETag"] = f'"{artifact.sha256}"'
        return response


class LogView(APIView):
    @extend_schema(responses={(200, "text/plain"): str}, summary="The job's log as text")
    def get(self, request, pk):
        job = job_for(request.user, pk)
        response = StreamingHttpResponse(log_lines(job), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.log"'
        return response


class ArchiveView(APIView):
    @extend_schema(responses={(200, "application/zip"): bytes}, summary="All artifacts as a ZIP")
    def get(self, request, pk):
        job = job_for(request.user, pk)
        response = StreamingHttpResponse(archive_stream(job), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.zip"'
        return response
