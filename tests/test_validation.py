"""Names, versions, filenames, hashes and tokens: the validators, without AWS."""

import base64
import hashlib

import pytest

from chalicelib.domain.hashes import InvalidHashes, MultiHasher, normalize_hashes
from chalicelib.domain.names import (
    InvalidInput,
    check_distribution_filename,
    normalize_name,
    parse_version,
)
from chalicelib.domain.tokens import ApiToken, credentials_from_header, session_id_for

SHA256 = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    ("name", "normalized"),
    [("Foo.Bar", "foo-bar"), ("foo__bar", "foo-bar"), ("A", "a"), ("x-1_2.3", "x-1-2-3")],
)
def test_names_are_normalized(name: str, normalized: str) -> None:
    assert normalize_name(name) == normalized


@pytest.mark.parametrize("name", ["", "-foo", "foo-", "fo o", "föö", "foo/bar", ".foo", "a" * 0])
def test_invalid_names_are_refused_with_the_spec_link(name: str) -> None:
    with pytest.raises(InvalidInput, match="name-normalization"):
        normalize_name(name)


def test_one_release_for_equal_versions() -> None:
    assert parse_version("1.0").key == parse_version("1.0.0").key == parse_version("1").key
    assert parse_version("1.0").text == "1.0"
    assert parse_version("1.0.0").text == "1.0.0"
    assert parse_version("1.0rc1").key != parse_version("1.0").key
    assert parse_version("01.0-RC.1").text == "1.0rc1"


@pytest.mark.parametrize("version", ["", "one", "1.0-foo-bar", "1..0"])
def test_invalid_versions_are_refused(version: str) -> None:
    with pytest.raises(InvalidInput, match="version-specifiers"):
        parse_version(version)


@pytest.mark.parametrize(
    "filename",
    [
        "foo_bar-1.0-py3-none-any.whl",
        "foo_bar-1.0.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "foo_bar-1.0-1-py3-none-any.whl",
        "foo_bar-1.0.tar.gz",
        "foo_bar-1.0.0.tar.gz",
        # Wheels keep the spec's older, unnormalized names (as PyPI accepts them).
        "Foo.Bar-1.0-py3-none-any.whl",
    ],
)
def test_distribution_filenames_of_the_release_pass(filename: str) -> None:
    check_distribution_filename(filename, "foo-bar", parse_version("1.0").key)


@pytest.mark.parametrize(
    ("filename", "why"),
    [
        ("foo_bar-1.0.zip", "neither a wheel"),
        ("foo_bar-1.0.egg", "neither a wheel"),
        ("other-1.0.tar.gz", "project 'other'"),
        ("foo_bar-2.0.tar.gz", "version 2.0"),
        ("foo_bar-1.0-py3-none.whl", "not a valid distribution filename"),
        ("../foo_bar-1.0.tar.gz", "path separator"),
        ("dir\\foo_bar-1.0.tar.gz", "path separator"),
        ("foo_bar-1.0\n.tar.gz", "control"),
        ("foo_bar-1.0\x00.tar.gz", "control"),
        ("", "1 to"),
    ],
)
def test_bad_filenames_say_why(filename: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_distribution_filename(filename, "foo-bar", parse_version("1.0").key)


def test_hashes_are_normalized_to_lower_case() -> None:
    assert normalize_hashes({"SHA256": SHA256.upper()}) == {"sha256": SHA256}


@pytest.mark.parametrize(
    ("hashes", "source"),
    [
        ({}, "hashes"),
        ({"md5": hashlib.md5(b"x").hexdigest()}, "hashes"),
        ({"sha1": hashlib.sha1(b"x").hexdigest()}, "hashes"),
        ({"sha256": "zz" * 32}, "hashes.sha256"),
        ({"sha256": SHA256[:-2]}, "hashes.sha256"),
        ({"nosuchhash": SHA256}, "hashes.nosuchhash"),
        ({"shake_128": SHA256}, "hashes.shake_128"),
        ({"sha256": SHA256, "SHA256": "00" * 32}, "hashes.SHA256"),
    ],
)
def test_bad_hashes_name_the_field(hashes: dict[str, str], source: str) -> None:
    with pytest.raises(InvalidHashes) as caught:
        normalize_hashes(hashes)
    assert caught.value.source == source


def test_weak_hashes_are_accepted_beside_a_secure_one() -> None:
    md5 = hashlib.md5(b"x").hexdigest()
    assert normalize_hashes({"sha256": SHA256, "md5": md5}) == {"sha256": SHA256, "md5": md5}


def test_multi_hasher_hashes_a_stream_once() -> None:
    hasher = MultiHasher(["sha256", "blake2b"])
    for chunk in (b"ab", b"c"):
        hasher.update(chunk)
    assert hasher.size == 3
    assert hasher.hexdigests() == {
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "blake2b": hashlib.blake2b(b"abc").hexdigest(),
    }


def test_api_tokens_round_trip_and_are_random() -> None:
    token = ApiToken.new()
    assert ApiToken.parse(token.text) == token
    assert ApiToken.new().text != token.text
    assert ApiToken.parse("wharf_short_x") is None
    assert ApiToken.parse("other_" + "a" * 32 + "_x") is None


def test_credentials_come_from_basic_and_bearer() -> None:
    basic = base64.b64encode(b"__token__:s3cret").decode()
    assert credentials_from_header(f"Basic {basic}") == "s3cret"
    assert credentials_from_header("Bearer s3cret") == "s3cret"
    assert credentials_from_header("bearer  s3cret ") == "s3cret"
    other_user = base64.b64encode(b"alice:s3cret").decode()
    assert credentials_from_header(f"Basic {other_user}") is None
    assert credentials_from_header("Basic !!notbase64") is None
    assert credentials_from_header("Digest abc") is None
    assert credentials_from_header(None) is None


def test_session_ids_do_not_reveal_the_session_token() -> None:
    sid = session_id_for("token-a")
    assert sid == session_id_for("token-a") != session_id_for("token-b")
    assert "token-a" not in sid and len(sid) == 32
