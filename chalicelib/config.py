"""Settings read from the environment, once, in one place.

Every name read here is documented in README.md ("Settings") and must be set by the
deployment template (infra/).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .domain.mechanisms import HTTP_POST_BYTES, multipart_identifier
from .domain.records import PUBLISH_AT_ONCE_MAX_FILES

DAY = 86_400
MIB = 1024 * 1024
# The deferred-processing queue's name where the local stack creates it. In AWS the
# queue's name is CloudFormation's, and the functions get its URL (WHARF_QUEUE_URL).
QUEUE_NAME = os.environ.get("WHARF_QUEUE_NAME", "wharf-jobs")


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _mechanisms(env: dict[str, str]) -> tuple[str, ...]:
    raw = env.get("WHARF_MECHANISMS", "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _endpoint(env: dict[str, str], name: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    # botocore would take a bare host as a path and sign URLs nobody can reach.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{name} must be an http(s) URL such as http://127.0.0.1:9000, got {raw!r}"
        )
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    public_url: str
    admin_token: str
    table_name: str
    bucket_name: str
    # PEP 694 recommends expunging sessions after no less than a week.
    session_lifetime: int = 7 * DAY
    session_max_lifetime: int = 30 * DAY
    # How long a terminal session keeps answering its status URL
    # (PEP 694 "Session Status Retention").
    session_retention: int = 7 * DAY
    max_file_size: int = 1024 * MIB
    # API Gateway and Lambda cap a request near 6 MB after base64, so bytes that pass
    # through the API stay well below it (DESIGN.md invariant 5).
    post_bytes_max: int = 4 * MIB
    operator: str = "wharf"
    retry_after: int = 1
    # The deferred-processing queue (SQS); completion of a file larger than
    # `inline_max` bytes, and publishing more than `inline_publish_max_files` files,
    # answer 202 and finish in the worker.
    queue_url: str = ""
    distribution_id: str = ""  # CloudFront, for invalidations; empty locally
    # What CloudFront sends in X-Wharf-Origin-Verify; when set, a request without it did
    # not come through the distribution and is refused. Empty locally.
    origin_verify: str = ""
    inline_max: int = 8 * MIB
    # A release the store commits in one write is published within the request (3 round
    # trips); a larger one in the worker, as the locked protocol would cost 7 (issue 13).
    inline_publish_max_files: int = PUBLISH_AT_ONCE_MAX_FILES
    # Lambda answers at most 6 MB: a project page above this many bytes is written to
    # storage and served by the edge (a 302 from /simple/<name>/).
    page_inline_max: int = 4 * MIB
    # Deliveries of a job before SQS moves it to the dead-letter queue (the template's
    # maxReceiveCount): the last one settles what it leaves in error, never processing.
    job_attempts: int = 3
    # The upload mechanisms offered, in the server's order of preference (WHARF_MECHANISMS);
    # empty: every one Wharf has (`offered_mechanisms`). A local stack offering only
    # http-post-bytes shows how a client copes with PEP 694's one required mechanism.
    mechanisms: tuple[str, ...] = ()
    # Local only (WHARF_S3_PRESIGN_ENDPOINT): the S3 endpoint presigned URLs name instead of
    # AWS_ENDPOINT_URL, so that tests can put a proxy between the client and the embedded
    # S3. Empty: the endpoint the server itself uses.
    s3_presign_endpoint: str = ""

    def __post_init__(self) -> None:
        # Checked here, not per request: a misconfigured server must not start at all.
        if not self.mechanisms:
            return
        known = self.available_mechanisms
        unknown = [name for name in self.mechanisms if name not in known]
        if unknown:
            raise ValueError(
                f"WHARF_MECHANISMS names unknown mechanisms {', '.join(map(repr, unknown))}; "
                f"this server has {', '.join(known)} (WHARF_OPERATOR={self.operator!r})"
            )
        if len(set(self.mechanisms)) != len(self.mechanisms):
            raise ValueError(f"WHARF_MECHANISMS lists a mechanism twice: {self.mechanisms}")
        if HTTP_POST_BYTES not in self.mechanisms:
            # PEP 694 requires every server to offer it: the one mechanism every client has.
            raise ValueError(
                f"WHARF_MECHANISMS must include {HTTP_POST_BYTES} (PEP 694 requires it)"
            )

    @property
    def available_mechanisms(self) -> tuple[str, ...]:
        """Every mechanism this server has, most preferred first: bytes straight to S3,
        then through the API."""
        return (multipart_identifier(self.operator), HTTP_POST_BYTES)

    @property
    def offered_mechanisms(self) -> tuple[str, ...]:
        """What sessions advertise and create_file accepts (WHARF_MECHANISMS, by default
        all of them), most preferred first."""
        return self.mechanisms or self.available_mechanisms

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        port = env.get("WHARF_PORT", "8000")
        host = env.get("WHARF_HOST", "127.0.0.1")
        public_url = env.get("WHARF_PUBLIC_URL") or f"http://{host}:{port}"
        return cls(
            public_url=public_url.rstrip("/"),
            admin_token=env.get("WHARF_ADMIN_TOKEN", ""),
            table_name=env.get("WHARF_TABLE", "wharf"),
            bucket_name=env.get("WHARF_BUCKET", "wharf-files"),
            session_lifetime=_int(env, "WHARF_SESSION_LIFETIME", 7 * DAY),
            session_max_lifetime=_int(env, "WHARF_SESSION_MAX_LIFETIME", 30 * DAY),
            session_retention=_int(env, "WHARF_SESSION_RETENTION", 7 * DAY),
            max_file_size=_int(env, "WHARF_MAX_FILE_SIZE", 1024 * MIB),
            post_bytes_max=_int(env, "WHARF_POST_BYTES_MAX", 4 * MIB),
            operator=env.get("WHARF_OPERATOR", "wharf"),
            queue_url=env.get("WHARF_QUEUE_URL", ""),
            distribution_id=env.get("WHARF_DISTRIBUTION_ID", ""),
            origin_verify=env.get("WHARF_ORIGIN_VERIFY", ""),
            inline_max=_int(env, "WHARF_INLINE_MAX", 8 * MIB),
            inline_publish_max_files=_int(
                env, "WHARF_INLINE_PUBLISH_MAX_FILES", PUBLISH_AT_ONCE_MAX_FILES
            ),
            page_inline_max=_int(env, "WHARF_PAGE_INLINE_MAX", 4 * MIB),
            job_attempts=_int(env, "WHARF_JOB_ATTEMPTS", 3),
            mechanisms=_mechanisms(env),
            s3_presign_endpoint=_endpoint(env, "WHARF_S3_PRESIGN_ENDPOINT"),
        )
