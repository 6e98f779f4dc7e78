import subprocess
import sys

from assay.cli import main


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, time; t=time.time(); from assay.cli import build_parser; build_parser().format_help();"
        "heavy=[m for m in ('torch','transformers','sentence_transformers','faiss','trl','datasets') if m in sys.modules];"
        "print(heavy, time.time()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, _seconds = out.rsplit(" ", 1)
    # What keeps `assay --help` fast is importing nothing heavy (a count, not a clock on a
    # VM whose speed drifts 2x); the time itself is measured in bench/.
    assert heavy == "[]", f"`assay --help` imported {heavy}"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: assay" in capsys.readouterr().out


def test_unknown_bench_is_a_user_error(capsys):
    assert main(["bench", "no-such-bench"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
