"""``eppark``: the command line entry point."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from typing import Any

from eppark.cli import jsonio


def _decide(value: Any) -> dict[str, Any]:
    from eppark.domain.decide import decide_from_json

    return decide_from_json(value)


def _fee(value: Any) -> dict[str, Any]:
    from eppark.domain.tariff import fee_from_json

    return fee_from_json(value)


def _fee_describe(value: Any) -> dict[str, Any]:
    from eppark.domain.tariff import describe_from_json

    return describe_from_json(value)


def _plates_check(value: Any) -> dict[str, Any]:
    from eppark.domain.plates import check_from_json

    return check_from_json(value)


def _plates_match(value: Any) -> dict[str, Any]:
    from eppark.domain.matching import match_from_json

    return match_from_json(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``eppark`` command."""
    parser = argparse.ArgumentParser(
        prog="eppark",
        description="EP Park: the brain behind unattended parking-lot robots.",
        epilog="Any other COMMAND is a Django management command: demo, serve, migrate, "
        "provision, createsuperuser, changepassword, …",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decide = commands.add_parser("decide", help="what the robot does for a car at a gate")
    decide.add_argument("--jsonl", action="store_true", help="one situation per line")

    fee = commands.add_parser("fee", help="what a temp stay costs (or: fee describe RULE)")
    fee.add_argument("action", nargs="?", choices=["describe"], help="render a rule as text")
    fee.add_argument("--jsonl", action="store_true", help="one input per line")

    plates = commands.add_parser("plates", help="plate tools")
    plate_commands = plates.add_subparsers(dest="plates_command", required=True, metavar="TOOL")
    check = plate_commands.add_parser(
        "check",
        help="normalise and classify a plate",
        description="Normalise and classify a plate. An invalid plate is an answer, not an "
        'error: it prints {"valid": false, …} and exits 0, like a valid one, so scripts and '
        "--jsonl batches read the verdict from the output; exit 2 means bad usage or input.",
    )
    check.add_argument("plate", nargs="?", help="the plate (omit with --jsonl)")
    check.add_argument("--jsonl", action="store_true", help="one plate per line on stdin")
    match = plate_commands.add_parser("match", help="cars inside most likely to be a misread")
    match.add_argument("--jsonl", action="store_true", help="one query per line")

    commands.add_parser("scenarios", help="show every gate scenario as the engine decides it")
    return parser


DOMAIN_COMMANDS = {"decide", "fee", "plates", "scenarios"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    _utf8_stdio()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in DOMAIN_COMMANDS:
        return _django(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback to a user
        sys.stderr.write(f"internal error: {type(exc).__name__}: {exc}\n")
        return 1


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "decide":
        return jsonio.run(_decide, jsonl=args.jsonl)
    if args.command == "fee":
        handler = _fee_describe if args.action == "describe" else _fee
        return jsonio.run(handler, jsonl=args.jsonl)
    if args.command == "plates":
        if args.plates_command == "match":
            return jsonio.run(_plates_match, jsonl=args.jsonl)
        if args.jsonl:
            if args.plate is not None:
                parser.error("plates check: give a PLATE or --jsonl, not both")
            return jsonio.run(_plates_check, jsonl=True)
        if args.plate is None:
            parser.error("plates check: a PLATE argument is required (or --jsonl)")
        sys.stdout.write(jsonio.dumps(_plates_check(args.plate)) + "\n")
        return jsonio.EXIT_OK
    if args.command == "scenarios":
        from eppark.demo import print_scenarios

        print_scenarios(sys.stdout)
        return jsonio.EXIT_OK
    parser.error(f"unknown command {args.command!r}")
    return jsonio.EXIT_BAD_INPUT  # pragma: no cover - parser.error exits


def _django(argv: list[str]) -> int:
    """Any other command is a Django management command (migrate, provision, …)."""
    import os

    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line, get_commands

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eppark.settings")
    if argv[0] == "demo":
        os.environ.setdefault("EPPARK_DEMO", "1")
    try:
        django.setup()
    except ImproperlyConfigured as exc:
        if argv[0] != "help" and not _known(argv[0], command_names_without_settings()):
            return _unknown(argv[0])  # a typo is a typo, whatever the configuration
        return _configuration_error(exc)
    known = get_commands()
    if argv[0] not in known and argv[0].replace("-", "_") in known:
        argv = [argv[0].replace("-", "_"), *argv[1:]]  # eppark robot-state → robot_state
    if argv[0] != "help" and argv[0] not in known:
        return _unknown(argv[0])
    try:
        execute_from_command_line(["eppark", *argv])
    except ImproperlyConfigured as exc:  # e.g. the gateway started without its broker password
        return _configuration_error(exc)
    return 0


def _known(name: str, known: set[str]) -> bool:
    return name in known or name.replace("-", "_") in known


def _unknown(name: str) -> int:
    sys.stderr.write(f"eppark: error: unknown command {name!r} (see eppark --help)\n")
    return jsonio.EXIT_BAD_INPUT


def _configuration_error(exc: Exception) -> int:
    sys.stderr.write(f"eppark: configuration error: {exc}\n")
    return jsonio.EXIT_BAD_INPUT


def command_names_without_settings() -> set[str]:
    """Every management command that could be installed, found without loading settings.

    Django's own, django.contrib's and EP Park's apps' (a superset of the installed
    apps' commands): enough to tell a typo from a command that needs configuring.
    """
    import importlib.util
    import pkgutil
    from pathlib import Path

    import django.contrib
    import django.core.management
    from django.core.management import find_commands

    import eppark

    names = set(find_commands(str(Path(django.core.management.__file__).parent)))
    for package in (eppark, django.contrib):
        for module in pkgutil.iter_modules(package.__path__):
            if module.ispkg:
                app_dir = Path(getattr(module.module_finder, "path", "")) / module.name
                names.update(find_commands(str(app_dir / "management")))
    spec = importlib.util.find_spec("simple_history")
    if spec is not None and spec.origin:
        names.update(find_commands(str(Path(spec.origin).parent / "management")))
    return names


def _utf8_stdio() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower() != "utf-8":
            stream.reconfigure(encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
