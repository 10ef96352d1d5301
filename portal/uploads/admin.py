from django.contrib import admin

from portal.uploads.models import Upload
from portal.uploads.services import upload_delete


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "size", "sha256", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "sha256", "project__name"]
    readonly_fields = ["project", "name", "kind", "size", "sha256", "created_by", "created_at"]

    def has_add_permission(self, request):
        return False  # bytes arrive through the upload page or the API, hashed and checked

    def delete_model(self, request, obj):
        upload_delete(upload=obj)

    def delete_queryset(self, request, queryset):
        for upload in queryset:
            upload_delete(upload=upload)
