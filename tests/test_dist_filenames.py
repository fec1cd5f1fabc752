"""Distribution filenames: wheel tags as the wheel spec spells them, sdist names as PEP 625
gives them, and the normalized identity of a filename within its release (issue 10)."""

from __future__ import annotations

import pytest

from chalicelib.domain.names import (
    SDIST_SPEC,
    WHEEL_SPEC,
    InvalidInput,
    check_distribution_filename,
    filename_key,
    parse_version,
)

RELEASE = parse_version("1.0").key


def check(filename: str) -> None:
    check_distribution_filename(filename, "foo-bar", RELEASE)


# -- 6. wheel tags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "foo_bar-1.0-py2.py3-none-any.whl",
        "foo_bar-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "foo_bar-1.0-cp38-abi3-macosx_10_9_universal2.whl",
        "foo_bar-1.0-cp313-cp313t-win_amd64.whl",
        "foo_bar-1.0-1-py3-none-any.whl",
        "foo_bar-1.0-2b_x-py3-none-any.whl",
    ],
)
def test_wheel_tags_of_the_spec_pass(filename: str) -> None:
    check(filename)


@pytest.mark.parametrize(
    "filename",
    [
        "foo_bar-1.0-py3-none-any;x.whl",
        "foo_bar-1.0-py3-none-a<b>.whl",
        'foo_bar-1.0-py3-none-a"b.whl',
        "foo_bar-1.0-py3-none-any?x.whl",
        "foo_bar-1.0-py3-none-any#x.whl",
        "foo_bar-1.0-py3-none-an y.whl",
        "foo_bar-1.0-py3-no+ne-any.whl",
        "foo_bar-1.0-py3-none-linux..x86_64.whl",
        "foo_bar-1.0-1?-py3-none-any.whl",
        "foo_bar-1.0-1 x-py3-none-any.whl",
        "foo_bar-1.0-1.5-py3-none-any.whl",
    ],
)
def test_wheel_tags_with_other_characters_are_refused(filename: str) -> None:
    with pytest.raises(InvalidInput, match=r"tag .*See " + WHEEL_SPEC):
        check(filename)


# -- 7. PEP 625 sdist names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("Foo_Bar-1.0.tar.gz", "foo_bar-1.0.tar.gz"),
        ("Foo.Bar-1.0.tar.gz", "foo_bar-1.0.tar.gz"),
        ("foo.bar-1.0.tar.gz", "foo_bar-1.0.tar.gz"),
        ("foo__bar-1.0.tar.gz", "foo_bar-1.0.tar.gz"),
        ("foo_bar-1.00.tar.gz", "foo_bar-1.0.tar.gz"),
        ("foo_bar-v1.0.tar.gz", "foo_bar-1.0.tar.gz"),
        ("foo_bar-1.0.POST1.tar.gz", "foo_bar-1.0.post1.tar.gz"),
    ],
)
def test_unnormalized_sdist_names_are_refused_naming_the_right_one(
    filename: str, expected: str
) -> None:
    release = parse_version(expected.removeprefix("foo_bar-").removesuffix(".tar.gz")).key
    with pytest.raises(InvalidInput, match=SDIST_SPEC) as caught:
        check_distribution_filename(filename, "foo-bar", release)
    assert repr(expected) in str(caught.value)


def test_normalized_sdist_names_pass() -> None:
    check("foo_bar-1.0.tar.gz")
    check_distribution_filename("foo_bar-1.0rc1.tar.gz", "foo-bar", parse_version("1.0rc1").key)


# -- 8. one identity per distribution in a release ---------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("FOO-1.0-py3-none-any.whl", "foo-1.0.0-py3-none-any.whl"),
        ("Foo.Bar-1.0-py3-none-any.whl", "foo_bar-1-py3-none-any.whl"),
        ("foo-1.0-py2.py3-none-any.whl", "foo-1.0-py3.py2-none-any.whl"),
        ("foo-1.0-py3.py3-none-any.whl", "foo-1.0-py3-none-any.whl"),
        ("foo-1.0-PY3-NONE-ANY.whl", "foo-1.0-py3-none-any.whl"),
        ("foo-1.0-01-py3-none-any.whl", "foo-1.0-1-py3-none-any.whl"),
        (
            "foo-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "foo-1.0-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        ),
        ("foo_bar-1.0.tar.gz", "foo_bar-1.0.0.tar.gz"),
        ("foo_bar-1.0.tar.gz", "Foo.Bar-1.tar.gz"),
        ("foo-1.0rc1-py3-none-any.whl", "foo-1.0.0RC1-py3-none-any.whl"),
    ],
)
def test_filenames_of_one_distribution_share_a_key(one: str, other: str) -> None:
    assert filename_key(one) == filename_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("foo-1.0-py3-none-any.whl", "foo-1.0.1-py3-none-any.whl"),
        ("foo-1.0-py3-none-any.whl", "foo-1.0-1-py3-none-any.whl"),
        ("foo-1.0-1a-py3-none-any.whl", "foo-1.0-1A-py3-none-any.whl"),
        ("foo-1.0-py3-none-any.whl", "foo-1.0-py2.py3-none-any.whl"),
        ("foo-1.0-py3-none-any.whl", "foo-1.0-py3-abi3-any.whl"),
        ("foo-1.0-py3-none-any.whl", "foo-1.0.tar.gz"),
        ("foo-1.0-py3-none-any.whl", "foo-1.0+local-py3-none-any.whl"),
        ("foo_bar-1.0.tar.gz", "foobar-1.0.tar.gz"),
    ],
)
def test_different_distributions_have_different_keys(one: str, other: str) -> None:
    assert filename_key(one) != filename_key(other)


def test_keys_read_as_normalized_filenames() -> None:
    assert filename_key("FOO-1.0-py3-none-any.whl") == "foo-1-py3-none-any.whl"
    assert filename_key("Foo.Bar-1.0.0.tar.gz") == "foo_bar-1.tar.gz"
    assert filename_key("foo-1.0-07b-py3.py2-none-any.whl") == "foo-1-7b-py2.py3-none-any.whl"


def test_keys_are_printable_ascii_and_short_for_any_valid_filename() -> None:
    # A compressed tag set of many members expands to their product (here 10 x 10 x 5
    # tags, thousands of bytes spelled out); the key stays as short as the filename, far
    # below DynamoDB's 1,024-byte sort key.
    py = ".".join(f"cp3{n}" for n in range(10, 20))
    abi = ".".join(f"cp3{n}t" for n in range(10, 20))
    plat = ".".join(f"plat{n}" for n in range(5))
    filename = f"Foo-1.0-{py}-{abi}-{plat}.whl"
    key = filename_key(filename)
    assert key.isascii() and key.isprintable()
    assert len(key) <= len(filename) <= 255
    assert filename_key(key) == key  # a key is itself a filename with that key


@pytest.mark.parametrize(
    "filename", ["foo-1.0.zip", "foo-1.0-py3-none-a;y.whl", "foo bar-1.0.tar.gz", "foo-x.tar.gz"]
)
def test_invalid_filenames_have_no_key(filename: str) -> None:
    with pytest.raises(InvalidInput):
        filename_key(filename)
