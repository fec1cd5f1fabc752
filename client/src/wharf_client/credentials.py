"""Where the token comes from, the way twine finds its password: the command line, the
environment, `~/.pypirc`, then keyring. The token is never printed."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import UsageError

TOKEN_USER = "__token__"
TOKEN_ENV = "WHARF_TOKEN"
NO_TOKEN = "no token: give --token, set $WHARF_TOKEN, or add it to ~/.pypirc (username __token__)"
URL_ENV = "WHARF_REPOSITORY_URL"


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


def _pypirc(path: Path | None = None) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(path or Path(os.environ.get("PYPIRC", Path.home() / ".pypirc")))
    return config


def _same_server(repository: str, url: str) -> bool:
    """Is `url` (the upload endpoint, or a session URL under it) on that server?"""
    if not repository:
        return False
    a, b = urlsplit(repository), urlsplit(url)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _checked(token: str | None) -> str | None:
    """A token as sent in a header: surrounding whitespace (a newline from a file or a CI
    secret) dropped; anything else unprintable refused without showing it."""
    if token is None:
        return None
    token = token.strip()
    if token and not all(" " < ch < "\x7f" for ch in token):
        raise UsageError("the token has characters a token never has (check how it is set)")
    return token or None


def resolve(
    url: str | None,
    token: str | None,
    repository: str | None = None,
    *,
    pypirc: Path | None = None,
) -> Target:
    """The server's PEP 694 root endpoint and the token to use with it.

    A `~/.pypirc` section is used when named by `repository`, or when its `repository`
    is the URL; its password is used only with username `__token__`."""
    config = _pypirc(pypirc)
    section = None
    if repository:
        if not config.has_section(repository):
            raise UsageError(f"no [{repository}] section in ~/.pypirc")
        section = config[repository]
    elif url:
        section = next(
            (
                config[name]
                for name in config.sections()
                if _same_server(config[name].get("repository", ""), url)
            ),
            None,
        )
    url = url or os.environ.get(URL_ENV) or (section.get("repository") if section else None)
    if not url:
        raise UsageError(
            "give the server's upload endpoint: --repository-url URL (Wharf's <base>/upload/), "
            f"{URL_ENV}, or a ~/.pypirc section with --repository"
        )
    token = _checked(token) or _checked(os.environ.get(TOKEN_ENV))
    if not token and section is not None and section.get("username", TOKEN_USER) == TOKEN_USER:
        token = _checked(section.get("password"))
    if not token:
        token = _checked(_from_keyring(section.get("repository", url) if section else url))
    return Target(url, token)


def _from_keyring(url: str) -> str | None:
    try:
        import keyring  # optional: pip install 'wharf-client[keyring]'
    except ImportError:
        return None
    try:
        found = keyring.get_password(url, TOKEN_USER)
    except Exception:  # a keyring backend that fails is as good as none
        return None
    return str(found) if found else None
