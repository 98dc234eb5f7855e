"""Every option of every ``scoresde`` command explains itself, with its default (issue: first hour)."""

from __future__ import annotations

import argparse

import pytest

from scoresde.cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_has_help_and_names_its_default(command: str) -> None:
    parser = _subparsers()[command]
    assert parser.description, f"{command}: no description"
    for action in _options(parser):
        flag = "/".join(action.option_strings)
        assert action.help and len(action.help) > 10, f"{command} {flag}: no help text"
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown:
            assert "default" in action.help, (
                f"{command} {flag}: default {action.default!r} unstated"
            )


def test_force_mentions_nfe_only_where_there_is_one() -> None:
    for command, parser in _subparsers().items():
        flags = {f for a in _options(parser) for f in a.option_strings}
        force = next(a for a in _options(parser) if "--force" in a.option_strings)
        assert ("--nfe" in force.help) == ("--nfe" in flags), command
