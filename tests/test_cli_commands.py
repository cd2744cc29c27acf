"""The command line registers only the module of the command it runs: the table
that says which module serves which command must be what the modules register."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
import typer.main

from bounced.cli.commands import COMMAND_MODULES, GLOBAL_VALUE_OPTIONS, build, command_of


def _registered(module: str) -> tuple[str, ...]:
    app = typer.Typer()
    importlib.import_module(f"bounced.cli.{module}").register(app)
    commands = [c.name for c in app.registered_commands]
    return (*commands, *(g.name for g in app.registered_groups))


def test_the_table_names_every_command_each_module_registers() -> None:
    for module, commands in COMMAND_MODULES.items():
        assert _registered(module) == commands, module


def test_no_command_is_served_by_two_modules() -> None:
    names = [c for commands in COMMAND_MODULES.values() for c in commands]
    assert len(names) == len(set(names))


def test_the_global_options_with_a_value_are_known() -> None:
    root = typer.main.get_command(build(()))
    taking_values = {
        name for param in root.params if not getattr(param, "is_flag", False) for name in param.opts
    }
    assert taking_values == GLOBAL_VALUE_OPTIONS


def test_the_command_word_is_found_past_global_options() -> None:
    assert command_of(["--actor", "parse", "check", "a@b.c"]) == "check"
    assert command_of(["--config=x.toml", "parse", "f"]) == "parse"
    assert command_of(["--version"]) == ""
    assert command_of(["--", "parse"]) == ""
    assert command_of([]) == ""


def test_parse_runs_without_the_other_command_modules(tmp_path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@example.org\nSubject: hi\n\nhello\n")
    code = (
        "import sys, atexit; from bounced.cli import main; atexit.register(lambda: print("
        "sorted(m for m in sys.modules if m.startswith('bounced.cli.')), file=sys.stderr)); "
        f"sys.argv = ['bounced', 'parse', '--all', '--format', 'ndjson', {str(message)!r}]; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = done.stderr.strip().splitlines()[-1]
    assert "bounced.cli.admin" not in loaded and "bounced.cli.parse" in loaded, done.stderr
    assert '"kind": ""' in done.stdout


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bounced", "--help"], capture_output=True, text=True
    )
    for commands in COMMAND_MODULES.values():
        for command in commands:
            assert f"  {command} " in done.stdout, command
