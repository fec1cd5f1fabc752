"""The deferred-processing queue on SQS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from ..domain.ports import QueueUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsJobQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, job: dict[str, str]) -> None:
        # After botocore's own retries. Only where SQS certainly did not take the job (it
        # refused it, or was never reached) may the caller undo what it did for the job:
        # after a lost answer the job may run, so that error goes on as it is.
        try:
            self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(job, sort_keys=True))
        except (ClientError, EndpointConnectionError, ConnectTimeoutError) as exc:
            raise QueueUnavailable(str(exc)) from exc

    def receive(self, wait_seconds: int = 1, limit: int = 10) -> list[tuple[dict[str, str], str]]:
        """Jobs and their receipt handles: what the SQS-triggered Lambda is handed in AWS;
        the local stack's worker polls with this."""
        response = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=limit, WaitTimeSeconds=wait_seconds
        )
        return [(json.loads(m["Body"]), m["ReceiptHandle"]) for m in response.get("Messages", [])]

    def done(self, receipt: str) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=receipt)
