"""``eppark provision FILE [--dry-run]``: create or update lots, devices, passes and staff."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from eppark.domain.errors import BadInput
from eppark.provisioning.apply import apply_plan
from eppark.provisioning.schema import parse_plan, read_document

EXIT_BAD_INPUT = 2
_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def read_file(name: str) -> Any:
    """The parsed document in file ``name`` ("-" is stdin); BadInput names the file and line."""
    if name == "-":
        return read_document(sys.stdin.read(), "<stdin>")
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(name, "no such file") from None
    except IsADirectoryError:
        raise BadInput(name, "is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(name, f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BadInput(name, f"cannot be read: {exc.strerror or exc}") from None
    return read_document(text, name, _FORMATS.get(path.suffix.lower()))


class Command(BaseCommand):
    """Provision from a YAML or JSON file; an invalid file changes nothing and exits 2."""

    help = (
        "Create or update lots, gates, robots, cameras, monthly passes and staff accounts "
        "from a YAML or JSON file (see docs/provisioning.md). Running it twice changes "
        "nothing the second time; an invalid file changes nothing at all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """FILE and --dry-run."""
        parser.add_argument("file", metavar="FILE", help="a .yaml/.yml or .json file, or - (stdin)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="validate and show what would change, then roll everything back",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        """On the command line an error is one line ``error: <path>: <reason>``, exit status 2."""
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            if not getattr(self, "_called_from_command_line", False) or options.get("traceback"):
                raise
            self.stderr.write(f"error: {exc}")
            sys.exit(exc.returncode)

    def handle(self, *args: Any, **options: Any) -> None:
        """Read, validate, apply in one transaction, print the summary."""
        try:
            plan = parse_plan(read_file(options["file"]))
            summary = apply_plan(plan, dry_run=options["dry_run"])
        except BadInput as exc:
            message = str(exc) if exc.field else f"{options['file']}: {exc.message}"
            raise CommandError(message, returncode=EXIT_BAD_INPUT) from None
        except DatabaseError as exc:
            message = " ".join(str(exc).split())
            raise CommandError(
                f"the database refused the change, nothing was saved: {message}"
            ) from None
        for line in summary.lines():
            self.stdout.write(line)
