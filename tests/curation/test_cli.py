import subprocess
import sys

from curation.cli import COMMANDS
from curation.cli import main as curate
from train.cli import COMMANDS as TRAIN_COMMANDS


def test_help_lists_commands_without_heavy_imports():
    code = (
        "import sys; from curation.cli import main; from train.cli import main as t; "
        "main(['--help']); t(['--help']); "
        "heavy = [m for m in ('torch', 'duckdb', 'spacy', 'nltk', 'timm', 'pyarrow') "
        "if m in sys.modules]; print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    for name in [*COMMANDS, *TRAIN_COMMANDS]:
        assert f"  {name} " in out.stdout


def test_unknown_command_is_exit_2(capsys):
    assert curate(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_every_registered_command_has_main():
    import importlib

    for module, _ in [*COMMANDS.values(), *TRAIN_COMMANDS.values()]:
        assert callable(importlib.import_module(module).main), module
