"""File bytes in S3. Each key is written once (invariant 5): `put_new` refuses to
overwrite, using S3's conditional write. Only the index's own listings are replaced."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import ClientError

from ..domain.ports import BlobGone, BlobInfo, Fetched, Listed, StoredPart, UploadGone
from .client_errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        GetObjectRequestTypeDef,
        ListPartsRequestTypeDef,
    )

PUBLIC_TAG = "wharf-public"
# Taggings in flight at once when publishing: 200 (100 files and their metadata) take
# ~13 round trips instead of 200; well below the client's connection pool (runtime.py).
TAGGING_CONCURRENCY = 16
R = TypeVar("R")


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, presigner: S3Client | None = None) -> None:
        self._s3 = client
        self._bucket = bucket
        # Presigned URLs name this client's endpoint: by default the one this store uses
        # (WHARF_S3_PRESIGN_ENDPOINT gives the local stack another, runtime.py).
        self._presigner = presigner or client

    def put_new(self, key: str, data: bytes) -> bool:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType="application/octet-stream",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def replace(self, key: str, data: bytes) -> None:
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType="application/octet-stream"
        )

    def head(self, key: str) -> BlobInfo | None:
        try:
            response = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return BlobInfo(size=int(response["ContentLength"]), etag=response["ETag"])

    def fetch(self, key: str, size: int) -> Fetched | None:
        try:
            # ChecksumMode: S3 answers the object's checksum; botocore checks the bytes
            # read against it.
            response = self._s3.get_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                return None
            raise
        stored = int(response["ContentLength"])
        with response["Body"] as body:
            # Not another size: an uploader must not make this request read a larger
            # object than it declared (a presigned PUT does not sign the length).
            data = body.read() if stored == size else b""
        checksum = response.get("ChecksumSHA256")
        # A multipart object's is a checksum of its parts' checksums ("...-N"), not the
        # file's SHA-256.
        whole = checksum and "-" not in checksum and response.get("ChecksumType") != "COMPOSITE"
        sha256 = base64.b64decode(checksum).hex() if whole and checksum and data else None
        return Fetched(data, sha256, stored)

    def listed(self, prefix: str) -> list[Listed]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        return [
            Listed(item["Key"], int(item["LastModified"].timestamp()))
            for page in pages
            for item in page.get("Contents", [])
        ]

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            response = self._s3.get_object(
                Bucket=self._bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                raise BlobGone(key) from None
            if error_code(exc) == "InvalidRange":  # wholly past the end
                return b""
            raise
        with response["Body"] as body:
            return body.read()

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                raise BlobGone(key) from None
            raise
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    # -- multipart (the vendor mechanism) --------------------------------------------------

    def start_multipart(self, key: str) -> str:
        # SHA256 checksums: S3 itself then refuses a part whose bytes do not match the
        # checksum signed into its URL.
        response = self._s3.create_multipart_upload(
            Bucket=self._bucket,
            Key=key,
            ContentType="application/octet-stream",
            ChecksumAlgorithm="SHA256",
        )
        return str(response["UploadId"])

    def stored_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        kwargs: ListPartsRequestTypeDef = {
            "Bucket": self._bucket,
            "Key": key,
            "UploadId": upload_id,
        }
        while True:
            try:
                page = self._s3.list_parts(**kwargs)
            except ClientError as exc:
                if error_code(exc) == "NoSuchUpload":
                    raise UploadGone(upload_id) from exc
                raise
            parts.extend(
                StoredPart(
                    number=int(p["PartNumber"]),
                    size=int(p["Size"]),
                    etag=p["ETag"],
                    sha256=p.get("ChecksumSHA256"),
                )
                for p in page.get("Parts", [])
            )
            if not page.get("IsTruncated"):
                return parts
            kwargs["PartNumberMarker"] = page["NextPartNumberMarker"]

    def presign_part(
        self, key: str, upload_id: str, number: int, size: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        # The length is signed too: S3 then refuses a part of any other size, rather
        # than storing it until completion finds it wrong.
        url = self._presigner.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
                "ContentLength": size,
                "ChecksumSHA256": sha256_b64,
            },
            ExpiresIn=expires_in,
        )
        return str(url), {"Content-Length": str(size), "x-amz-checksum-sha256": sha256_b64}

    def presign_put(
        self, key: str, size: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        # Every header is signed: S3 refuses bytes of another length or SHA-256 (an object
        # larger than declared is never stored), and If-None-Match makes the URL write
        # once (S3 conditional writes).
        headers = {
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
            "If-None-Match": "*",
            "x-amz-checksum-sha256": sha256_b64,
        }
        url = self._presigner.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentLength": size,
                "ContentType": headers["Content-Type"],
                "IfNoneMatch": headers["If-None-Match"],
                "ChecksumSHA256": sha256_b64,
            },
            ExpiresIn=expires_in,
        )
        return str(url), headers

    def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        listed: list[CompletedPartTypeDef] = []
        for p in parts:
            part: CompletedPartTypeDef = {"PartNumber": p.number, "ETag": p.etag}
            if p.sha256:
                part["ChecksumSHA256"] = p.sha256
            listed.append(part)
        try:
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload":
                raise UploadGone(upload_id) from exc
            raise

    def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        params: GetObjectRequestTypeDef = {"Bucket": self._bucket, "Key": key}
        if content_type is not None:  # S3's response-content-type override
            params["ResponseContentType"] = content_type
        if cache_control is not None:
            params["ResponseCacheControl"] = cache_control
        url = self._presigner.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )
        return str(url)

    def mark_public(self, keys: Sequence[str]) -> None:
        # CloudFront's bucket policy serves only objects with this tag (infra/); tagging,
        # unlike a copy, keeps the object's bytes and ETag.
        _each(self._tag_public, keys)

    def _tag_public(self, key: str) -> None:
        self._s3.put_object_tagging(
            Bucket=self._bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": PUBLIC_TAG, "Value": "true"}]},
        )

    def put_public(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        # Tagged in the same PutObject: never an untagged object the edge would refuse.
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                Tagging=f"{PUBLIC_TAG}=true",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise

    def is_public(self, key: str) -> bool:
        try:
            tags = self._s3.get_object_tagging(Bucket=self._bucket, Key=key)["TagSet"]
        except ClientError as exc:
            # Anything but a missing object (a refused permission, say) is an error to
            # see, not a reason to tag again.
            if error_code(exc) != "NoSuchKey":
                raise
            return False
        return any(t["Key"] == PUBLIC_TAG and t["Value"] == "true" for t in tags)

    def all_public(self, keys: Sequence[str]) -> bool:
        return all(_each(self.is_public, keys))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            # Already completed or aborted: nothing left to discard. (moto answers an
            # unknown upload id with a 500 rather than NoSuchUpload.)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if error_code(exc) != "NoSuchUpload" and status < 500:
                raise


def _each(call: Callable[[str], R], keys: Sequence[str]) -> list[R]:
    """`call` on every key, TAGGING_CONCURRENCY at a time (botocore clients are
    thread-safe), the answers in order; re-raises the first failure. One key is called
    in this thread."""
    if len(keys) <= 1:
        return [call(key) for key in keys]
    with ThreadPoolExecutor(min(TAGGING_CONCURRENCY, len(keys))) as pool:
        return list(pool.map(call, keys))
