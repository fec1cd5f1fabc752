"""The `wharf` command: upload, and the session commands status, publish, cancel and
extend. Exit codes (errors.py): 0 done, 2 usage or bad input, 3 refused by the server,
4 network failure, 1 anything else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, upload
from .api import Api
from .credentials import NO_TOKEN, TOKEN_ENV, URL_ENV, resolve
from .errors import EXIT_UNEXPECTED, Problem, Refused, UsageError, WharfClientError
from .progress import Plain, reporter
from .uploader import Options, Uploader


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wharf", description="Publish to a PEP 694 (Upload 2.0) index.")
    parser.add_argument("--version", action="version", version=f"wharf-client {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--token", help=f"API token (default: ${TOKEN_ENV}, ~/.pypirc, keyring)")
        sub.add_argument("--repository", help="a ~/.pypirc section to take URL and token from")
        sub.add_argument("--quiet", "-q", action="store_true", help="print only errors")

    upload = commands.add_parser("upload", help="upload and publish distributions")
    common(upload)
    upload.add_argument(
        "--repository-url", help=f"the server's PEP 694 root endpoint (default: ${URL_ENV})"
    )
    upload.add_argument("--stage", action="store_true", help="stop before publishing")
    upload.add_argument("--parallel-files", type=int, default=4, metavar="N")
    upload.add_argument("--parallel-parts", type=int, default=4, metavar="N")
    upload.add_argument("--plain", action="store_true", help="one line per step, no bars")
    upload.add_argument("dists", nargs="+", metavar="DIST", help="wheels and sdists")

    for name, text in (
        ("status", "show a session, each file's state and every notice"),
        ("publish", "publish a staged session and wait until it is published"),
        ("cancel", "cancel a session (its uploads are discarded)"),
        ("extend", "keep a session alive longer"),
    ):
        sub = commands.add_parser(name, help=text)
        common(sub)
        if name == "extend":
            sub.add_argument("--seconds", type=int, default=86400, help="default: one day")
        sub.add_argument("session_url", metavar="SESSION-URL")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    out = Plain(sys.stdout)
    try:
        args = _parser().parse_args(argv)
        return _run(args, out)
    except WharfClientError as exc:
        print(f"wharf: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wharf: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so, in one line
        print(f"wharf: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED


def _run(args: argparse.Namespace, out: Plain) -> int:
    if args.command == "upload":
        return _upload(args, out)
    target = resolve(args.session_url, args.token, args.repository)
    if not target.token:
        raise UsageError(NO_TOKEN)
    api = Api(target.token)
    try:
        if args.command == "status":
            _print_status(api.get(args.session_url, context="status").body, out)
        elif args.command == "publish":
            body = Uploader(api, "", out, Options()).publish(args.session_url, "the session")
            out.step(f"published: {args.session_url}")
            if not args.quiet:
                _print_status(body, out)
        elif args.command == "cancel":
            _cancel(api, args.session_url)
            out.step(f"canceled: {args.session_url}")
        elif args.command == "extend":
            _extend(api, args.session_url, args.seconds, out)
    finally:
        api.close()
    return 0


def _cancel(api: Api, url: str) -> None:
    answer = api.call("DELETE", url, idempotent=True, expect=(204, 409), context="canceling")
    if answer.status == 409:  # canceled by a first try whose answer was lost, or refused
        session = api.get(url, context="canceling").body
        if session.get("status") != "canceled":
            raise Refused(Problem.from_answer(409, answer.body, "Conflict"), "canceling")


def _extend(api: Api, url: str, seconds: int, out: Plain) -> None:
    extend = api.get(url, context="extending").body.get("links", {}).get("extend")
    if not extend:  # PEP 694: no link when the server does not extend sessions
        raise Refused(Problem(409, "this server does not extend sessions"), "extending")
    body = api.call(
        "POST", extend, {"extend-for": seconds}, idempotent=True, context="extending"
    ).body
    out.step(f"expires at {body.get('expires-at')}")


def _upload(args: argparse.Namespace, out: Plain) -> int:
    shown = reporter(quiet=args.quiet, plain=args.plain or None)
    outcomes = upload(
        args.dists,
        repository_url=args.repository_url,
        token=args.token,
        repository=args.repository,
        stage=args.stage,
        parallel_files=args.parallel_files,
        parallel_parts=args.parallel_parts,
        shown=shown,
    )
    for outcome in outcomes:
        files = len(outcome.uploaded) + len(outcome.skipped)
        if outcome.status == "published":
            out.step(f"Published {outcome.project} {outcome.version} ({files} files).")
        else:
            out.step(
                f"Staged {outcome.project} {outcome.version} ({files} files), not published.\n"
                f"Try it:\n  pip install --index-url {outcome.stage_url} "
                f"{outcome.project}=={outcome.version}\n"
                f"Publish it:\n  wharf publish {outcome.session_url}"
            )
    return 0


def _print_status(body: dict[str, Any], out: Plain) -> None:
    out.step(f"status: {body.get('status')} (expires at {body.get('expires-at')})")
    for notice in body.get("notices") or []:
        out.step(f"  notice: {notice}")
    files = body.get("files") or {}
    if not files:
        out.step("no files")
    for filename, file in sorted(files.items()):
        out.step(f"  {filename}: {file.get('status')}")
        for notice in file.get("notices") or []:
            out.step(f"    {notice}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
