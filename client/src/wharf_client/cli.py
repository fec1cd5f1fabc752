"""The `wharf` command: upload, and the session commands status, publish, cancel and
extend. Exit codes (errors.py): 0 done, 2 usage or bad input, 3 refused by the server,
4 network failure, 1 anything else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .api import Api
from .credentials import TOKEN_ENV, URL_ENV, resolve
from .dists import releases
from .errors import EXIT_UNEXPECTED, UsageError, WharfClientError
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
            api.call("DELETE", args.session_url, idempotent=True, context="canceling")
            out.step(f"canceled: {args.session_url}")
        elif args.command == "extend":
            session = api.get(args.session_url, context="extending").body
            body = api.call(
                "POST",
                session["links"]["extend"],
                {"extend-for": args.seconds},
                idempotent=True,
                context="extending",
            ).body
            out.step(f"expires at {body.get('expires-at')}")
    finally:
        api.close()
    return 0


def _upload(args: argparse.Namespace, out: Plain) -> int:
    if args.parallel_files < 1 or args.parallel_parts < 1:
        raise UsageError("--parallel-files and --parallel-parts are at least 1")
    target = resolve(args.repository_url, args.token, args.repository)
    found = releases(args.dists)  # refuses bad files before anything is sent
    if not target.token:
        raise UsageError(
            f"no token: give --token, set ${TOKEN_ENV}, or add it to ~/.pypirc (username __token__)"
        )
    shown = reporter(quiet=args.quiet, plain=args.plain or None)
    api = Api(target.token, pool=max(16, args.parallel_files * args.parallel_parts * 2))
    options = Options(args.parallel_files, args.parallel_parts, args.stage)
    try:
        outcomes = [Uploader(api, target.url, shown, options).upload(r) for r in found]
    finally:
        shown.close()
        api.close()
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
