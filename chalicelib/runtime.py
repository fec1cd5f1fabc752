"""Wiring: the services built from settings and AWS clients, once per Lambda container.

Tests and the local stack install their own (`install`)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config

from .adapters.clock import SystemClock
from .adapters.cloudfront import CloudFrontCache, NoEdgeCache
from .adapters.dynamodb.store import DynamoStore
from .adapters.s3 import S3BlobStore
from .adapters.sqs import SqsJobQueue
from .config import Settings
from .domain.ports import BlobStore, Clock, EdgeCache, JobQueue, Store
from .http.links import Links
from .http.simple import ProjectPages
from .services.access import Access
from .services.admin import AdminService
from .services.admission import Admission
from .services.completion import Completion
from .services.files import FileService
from .services.index import IndexService
from .services.legacy import LegacyService
from .services.parts import PartService
from .services.publishing import Publisher, PublishService
from .services.sessions import SessionService
from .services.sweep import Sweep
from .services.verification import Verifier
from .services.worker import Worker

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    blobs: BlobStore
    queue: JobQueue
    clock: Clock
    access: Access
    sessions: SessionService
    files: FileService
    completion: Completion
    parts: PartService
    publishing: PublishService
    publisher: Publisher
    admin: AdminService
    links: Links
    worker: Worker
    index: IndexService
    edge: EdgeCache
    legacy: LegacyService
    sweep: Sweep
    pages: ProjectPages


def build(
    settings: Settings,
    *,
    store: Store,
    blobs: BlobStore,
    queue: JobQueue,
    edge: EdgeCache | None = None,
    clock: Clock | None = None,
) -> Services:
    clock = clock or SystemClock()
    edge = edge or NoEdgeCache()
    access = Access(store, settings.admin_token)
    verifier = Verifier(blobs, clock)
    publisher = Publisher(store, store, blobs, edge, clock)
    admission = Admission(store, access, verifier, clock, settings)
    sessions = SessionService(store, admission, access, clock, settings)
    files = FileService(store, blobs, admission, verifier, clock, settings)
    completion = Completion(store, admission, access, verifier, queue, clock, settings)
    index = IndexService(store, store, blobs, settings.public_url)
    publishing = PublishService(store, admission, publisher, queue, clock, settings)
    return Services(
        settings=settings,
        store=store,
        blobs=blobs,
        queue=queue,
        clock=clock,
        access=access,
        sessions=sessions,
        files=files,
        completion=completion,
        parts=PartService(store, blobs, admission, files, completion),
        publishing=publishing,
        publisher=publisher,
        admin=AdminService(store, clock),
        links=Links(settings.public_url),
        worker=Worker(store, verifier, publisher, clock, access, index),
        index=index,
        edge=edge,
        legacy=LegacyService(sessions, files, completion, publishing, publisher, verifier),
        sweep=Sweep(store, admission, publisher, index, clock),
        # The most requested project pages, rendered: 64 MB at most of the API's 512 MB.
        pages=ProjectPages(
            64 * 10**6, index.static_page, index.private_page, settings.page_inline_max
        ),
    )


def dynamo_store(settings: Settings, client: DynamoDBClient) -> DynamoStore:
    return DynamoStore(
        client,
        settings.table_name,
        retention=settings.session_retention,
        max_lifetime=settings.session_max_lifetime,
    )


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"


_CONFIG = Config(retries={"mode": "standard"}, max_pool_connections=50)
# SigV4: S3 URLs would be presigned with SigV2 otherwise.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))

_session: botocore.session.Session | None = None


def aws_session() -> botocore.session.Session:
    """The botocore session every AWS client of this container is made from. boto3 is
    not imported: its clients are botocore's, and its own imports (s3transfer and
    multiprocessing among them) were a fifth of the API's cold start. The local stack
    registers its in-process AWS on this session (devserver/inprocess.py)."""
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


def _client(service: str, **kwargs: Any) -> Any:
    # AWS_ENDPOINT_URL (the local stack's moto) and the credentials come from the
    # environment, as for any botocore client.
    return aws_session().create_client(service, **kwargs)


def aws_clients() -> tuple[DynamoDBClient, S3Client, SQSClient]:
    region = _region()
    return (
        cast("DynamoDBClient", _client("dynamodb", region_name=region, config=_CONFIG)),
        cast("S3Client", _client("s3", region_name=region, config=_S3_CONFIG)),
        cast("SQSClient", _client("sqs", region_name=region, config=_CONFIG)),
    )


def s3_presigner(endpoint: str) -> S3Client:
    """An S3 client used only to presign URLs naming `endpoint` (WHARF_S3_PRESIGN_ENDPOINT):
    signed as the store's own client signs, with the same credentials and region. Creating
    it sends nothing."""
    return cast(
        "S3Client",
        _client("s3", region_name=_region(), endpoint_url=endpoint, config=_S3_CONFIG),
    )


def with_edge_parameter(settings: Settings) -> Settings:
    """In AWS the CloudFront domain and id come from an SSM parameter the template
    writes (WHARF_EDGE_PARAMETER): as environment variables they would make the template
    circular (function -> distribution -> API -> function)."""
    name = os.environ.get("WHARF_EDGE_PARAMETER")
    if not name:
        return settings
    ssm = _client("ssm", region_name=_region())
    edge = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    return dataclasses.replace(
        settings,
        public_url=os.environ.get("WHARF_PUBLIC_URL") or str(edge["public_url"]).rstrip("/"),
        distribution_id=str(edge["distribution_id"]),
    )


def with_secrets(settings: Settings) -> Settings:
    """In AWS the admin token and the origin-verify value live in Secrets Manager (the
    template generates them); only the API function is given their ARNs, and reads them
    once per cold start."""
    admin_arn = os.environ.get("WHARF_ADMIN_TOKEN_SECRET")
    origin_arn = os.environ.get("WHARF_ORIGIN_VERIFY_SECRET")
    if not admin_arn and not origin_arn:
        return settings
    client = _client("secretsmanager", region_name=_region())

    def read(arn: str | None, default: str) -> str:
        return str(client.get_secret_value(SecretId=arn)["SecretString"]) if arn else default

    return dataclasses.replace(
        settings,
        admin_token=read(admin_arn, settings.admin_token),
        origin_verify=read(origin_arn, settings.origin_verify),
    )


_services: Services | None = None


def services() -> Services:
    global _services
    if _services is None:
        settings = with_secrets(with_edge_parameter(Settings.from_env()))
        dynamodb, s3, sqs = aws_clients()
        edge = (
            CloudFrontCache(_client("cloudfront", region_name=_region()), settings.distribution_id)
            if settings.distribution_id
            else None
        )
        _services = build(
            settings,
            store=dynamo_store(settings, dynamodb),
            blobs=S3BlobStore(
                s3,
                settings.bucket_name,
                s3_presigner(settings.s3_presign_endpoint)
                if settings.s3_presign_endpoint
                else None,
            ),
            queue=SqsJobQueue(sqs, settings.queue_url),
            edge=edge,
        )
    return _services


def install(built: Services | None) -> None:
    global _services
    _services = built
