"""multipart/form-data as the legacy API reads it (chalicelib/http/forms.py)."""

from __future__ import annotations

import os

import pytest

from chalicelib.http.forms import FormInvalid, form_parts

BOUNDARY = "----wharf-test"
TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[str, bytes, str | None]) -> bytes:
    body = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def test_fields_and_a_binary_file_come_back_as_sent() -> None:
    # Random bytes: CR, LF and what looks like a boundary's start are just bytes.
    content = os.urandom(256 * 1024) + b"\r\n--" + os.urandom(16)
    parts = form_parts(
        TYPE,
        form((":action", b"file_upload", None), ("content", content, "demo-1.0.tar.gz")),
    )
    assert [(p.name, p.filename) for p in parts] == [
        (":action", None),
        ("content", "demo-1.0.tar.gz"),
    ]
    assert parts[0].data == b"file_upload" and parts[1].data == content


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", form(("name", b"x", None))),  # no boundary
        (TYPE, b"--elsewhere\r\nnot this form\r\n"),
    ],
)
def test_a_body_that_is_not_the_form_its_type_says_is_refused(
    content_type: str, body: bytes
) -> None:
    with pytest.raises(FormInvalid):
        form_parts(content_type, body)
