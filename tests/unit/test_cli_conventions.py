"""CLI conventions on the real parser: help on every option, ``-c`` wherever a run file is read."""

from __future__ import annotations

import argparse

import pytest

from gagebench.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the gagebench parser has no subcommands")


SUBCOMMANDS = _subcommands()


def test_there_are_subcommands_to_check() -> None:
    assert {"run", "demo", "report", "compare", "cluster-spec"} <= SUBCOMMANDS.keys()


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_and_argument_has_help(name: str) -> None:
    sub = SUBCOMMANDS[name]
    assert sub.description or sub.format_usage(), name
    missing = [
        "/".join(a.option_strings) or a.dest
        for a in sub._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert not missing, f"gagebench {name}: no help for {missing}"


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_a_run_file_option_has_the_c_alias(name: str) -> None:
    configs = [a for a in SUBCOMMANDS[name]._actions if "--config" in a.option_strings]
    for action in configs:
        assert "-c" in action.option_strings, f"gagebench {name} --config has no -c"


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-c", "a.yaml", "-c", "b.yaml"],
        ["cluster-spec", "-c", "a.yaml", "-c", "b.yaml"],
        ["report", "run-folder", "-c", "a.yaml", "-c", "b.yaml"],
        ["compare", "run-folder", "-c", "a.yaml", "-c", "b.yaml"],
    ],
)
def test_c_is_parsed_as_config(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).config == ["a.yaml", "b.yaml"]
