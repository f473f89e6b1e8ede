"""The ``bench`` command line. Each subcommand lives in its own module under ``bench/commands``.

Bad input never produces a traceback: a ``UsageError`` (or argparse's own complaint) becomes one
line on stderr and exit status 2, before anything is written. Storage that fills up or turns
read-only mid-run is one line and exit status 1: every file is written atomically, so what was
written before the failure is intact, and running the command again (``bench resume``) continues.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from bench import plugins
from bench.errors import STORAGE_ERRNOS, UsageError

# Subcommand modules, each with ``add_parser(subparsers)`` setting ``func``.
COMMANDS = ["train", "run", "score", "report", "rescore", "diagnose", "tensorboard", "components"]


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help text at spaces only: names such as ``stacked-digits`` stay whole (and greppable)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we want exactly one line and exit 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="bench", description="gan-bench: compare GAN losses at scale (Lucic et al. 2018).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"bench.commands.{name}").add_parser(sub)
    for command in [parser, *sub.choices.values()]:  # loaded before parsing (see main); in every command's help
        command.add_argument("--plugin", action="append", metavar="FILE_OR_MODULE",
                             help=f"import a plugin that registers losses, archs, datasets or metrics (repeatable; "
                                  f"also ${plugins.ENV}, separated by ':')")
    return parser


def plugin_args(argv: Sequence[str]) -> list[str]:
    """The values of every ``--plugin X`` / ``--plugin=X`` in ``argv``: plugins must be imported before
    the parser is built, since what they register is listed in its help and checked against its names."""
    out, it = [], iter(argv)
    for a in it:
        if a == "--plugin":
            out.append(next(it, ""))
        elif a.startswith("--plugin="):
            out.append(a.partition("=")[2])
        elif a == "--":
            break
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        plugins.load_entry_points()
        plugins.load_all(plugins.from_env() + plugin_args(argv))
    except UsageError as e:
        sys.stderr.write(f"bench: error: {e}\n")
        return 2
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit: a reader that left (`| head`) is caught below
        return code
    except UsageError as e:
        sys.stderr.write(f"bench {args.command}: error: {e}\n")
        return 2
    except BrokenPipeError:  # `bench status DIR | head`: the reader left, nothing went wrong
        # Point stdout at /dev/null so that the interpreter's own flush at exit finds nothing to write.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        where = f": {e.filename}" if e.filename else ""
        fix = ("check the S3 endpoint and credentials" if str(e.filename or "").startswith("s3://")
               else "free space (or make the storage writable)")
        sys.stderr.write(f"bench {args.command}: error: {e.strerror}{where}; what was written before is intact: "
                         f"{fix} and run the command again\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
