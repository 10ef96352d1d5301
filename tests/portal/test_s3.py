"""Uploads stored in S3 through django-storages, against moto's S3 server on loopback."""

import hashlib

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from portal.uploads.models import blob_key

pytestmark = pytest.mark.django_db

FASTA = b">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nACDEFGHIKLMNPQRSTVWY\n"


@pytest.fixture
def s3_bucket():
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials)
    s3.create_bucket(Bucket="portal-test")
    storages = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "portal-test",
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "file_overwrite": True,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield s3
    server.stop()


def test_an_upload_lands_in_the_bucket_under_its_digest_and_comes_back(
    s3_bucket, project, alice, api
):
    client = api(alice)
    response = client.post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile("seqs.fasta", FASTA)},
        format="multipart",
    )
    assert response.status_code == 201
    digest = hashlib.sha256(FASTA).hexdigest()
    assert response.json()["sha256"] == digest
    stored = s3_bucket.get_object(Bucket="portal-test", Key=blob_key(digest))["Body"].read()
    assert stored == FASTA

    again = client.post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile("again.fasta", FASTA)},
        format="multipart",
    )
    assert again.status_code == 200
    keys = [o["Key"] for o in s3_bucket.list_objects_v2(Bucket="portal-test")["Contents"]]
    assert keys == [blob_key(digest)]

    content = client.get(f"/api/v1/uploads/{response.json()['id']}/content")
    assert b"".join(content.streaming_content) == FASTA

    assert client.delete(f"/api/v1/uploads/{response.json()['id']}/").status_code == 204
    assert s3_bucket.list_objects_v2(Bucket="portal-test").get("KeyCount") == 0
