import csv
import io

from django.http import FileResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.idempotency import idempotent
from portal.ids import IdField
from portal.projects.models import Role
from portal.projects.selectors import project_for
from portal.uploads.filters import UploadFilter
from portal.uploads.handlers import FILE_FIELD, HashingUploadHandler
from portal.uploads.models import Upload
from portal.uploads.selectors import upload_for, uploads_visible_to
from portal.uploads.services import upload_create, upload_delete, upload_open


class UploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = Upload
        fields = ["id", "project", "name", "kind", "size", "sha256", "created_at"]


class UploadInput(serializers.Serializer):
    project = IdField()
    file = serializers.FileField()


def use_hashing_handler(request):
    """Set before anything reads the body: the CSRF check of a signed-in browser reads it."""
    request.upload_handlers = [HashingUploadHandler(request)]


class UploadListView(ListAPIView):
    serializer_class = UploadSerializer
    filterset_class = UploadFilter
    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        if request.method == "POST":
            use_hashing_handler(request)
        return super().initialize_request(request, *args, **kwargs)

    def get_queryset(self):
        return uploads_visible_to(self.request.user)

    @extend_schema(
        request={"multipart/form-data": UploadInput},
        responses={201: UploadSerializer, 200: UploadSerializer},
        summary="Upload a file (200 with the existing upload when the bytes are there already)",
    )
    @idempotent
    def post(self, request):
        data = UploadInput(
            data={"project": request.data.get("project"), "file": request.FILES.get(FILE_FIELD)}
        )
        data.is_valid(raise_exception=True)
        file = data.validated_data["file"]
        try:
            project = project_for(request.user, data.validated_data["project"], role=Role.EDITOR)
            upload, created = upload_create(project=project, by=request.user, file=file)
        finally:
            # The temporary file is moved into storage or no longer needed: remove it now
            # rather than when the response has gone out.
            file.close()
        return Response(
            UploadSerializer(upload).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class UploadDetailView(APIView):
    @extend_schema(responses=UploadSerializer)
    def get(self, request, pk):
        return Response(UploadSerializer(upload_for(request.user, pk)).data)

    @extend_schema(responses={204: None}, summary="Delete an upload (owner or editor)")
    def delete(self, request, pk):
        upload_delete(upload=upload_for(request.user, pk, role=Role.EDITOR))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadContentView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes}, summary="The bytes")
    def get(self, request, pk):
        upload = upload_for(request.user, pk)
        response = FileResponse(
            upload_open(upload),
            as_attachment=True,
            filename=upload.name,
            content_type="application/octet-stream",  # bytes to save, never a page to render
        )
        response["Content-Length"] = upload.size
        response["ETag"] = f'"{upload.sha256}"'
        return response


class UploadPreviewView(APIView):
    """The start of an upload, for forms that let a scientist pick columns."""

    ROWS = 5
    HEAD = 64 * 1024

    @extend_schema(
        responses=inline_serializer(
            "UploadPreview",
            {
                "kind": serializers.CharField(),
                "columns": serializers.ListField(child=serializers.CharField()),
                "rows": serializers.ListField(child=serializers.ListField()),
                "records": serializers.ListField(child=serializers.DictField()),
            },
        ),
        summary="Columns and first rows (CSV/TSV) or first records (FASTA) of an upload",
    )
    def get(self, request, pk):
        upload = upload_for(request.user, pk)
        with upload_open(upload) as f:
            head = f.read(self.HEAD).decode("utf-8", "replace")
        if len(head) >= self.HEAD and "\n" in head:
            head = head[: head.rfind("\n")]  # whole lines only
        columns, rows, records = [], [], []
        if upload.kind in ("csv", "tsv"):
            reader = csv.reader(io.StringIO(head), delimiter="," if upload.kind == "csv" else "\t")
            columns = [c.strip().lstrip("\ufeff") for c in next(reader, [])]
            rows = [row for row, _ in zip(reader, range(self.ROWS), strict=False)]
        elif upload.kind in ("fasta", "a3m"):
            for block in head.split("\n>")[: self.ROWS]:
                header, _, sequence = block.lstrip(">").partition("\n")
                records.append({"header": header.strip(), "length": len("".join(sequence.split()))})
        return Response({"kind": upload.kind, "columns": columns, "rows": rows, "records": records})
