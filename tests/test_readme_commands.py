"""Issue 15 point 9: every command in the README and in ``--help`` is run by a test.

Commands are taken from the README's ``sh`` and ``cron`` blocks, its inline
``-p key=value`` examples and the ``e.g.`` examples of ``retention-study run --help``.
Cheap ones run as written, on a small simulated sample laid out as the README
expects (``data/raw/sample``, ``configs/``); a ``run`` is replaced by ``check`` with
the same config, overrides and one ``-p`` per grid value (the config and the data are
what a run would refuse first; full runs are tested in test_report.py and
test_faults.py); ``make`` targets are dry-run (``make -n``); the papermill study
commands run on a notebook made of the study's parameters cell in
test_notebook_parameters.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retention_study import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Config names the README uses for "your own config": they stand for the sample's.
PLACEHOLDER_CONFIGS = {"configs/mydata.yaml", "configs/acme.yaml", "configs/acme_b2b.yaml"}


def readme_blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README, flags=re.S)


def readme_commands() -> list[list[str]]:
    """Every command line of the README's sh and cron blocks, as argv lists."""
    commands = []
    for block in readme_blocks("sh") + readme_blocks("cron"):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line:
                continue
            if "&&" in line:  # cron: "cd /srv/... && COMMAND >>log 2>&1"
                line = line.split("&&", 1)[1].split(">>", 1)[0]
            commands.append(shlex.split(line))
    # and commands quoted inline in the text, e.g. `.venv/bin/papermill --help-notebook ...`
    commands += [shlex.split(c) for c in re.findall(r"`(\.venv/bin/[^`]+)`", README)]
    return commands


def help_examples() -> list[str]:
    """The ``e.g.`` examples in ``retention-study run --help``."""
    text = cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    return re.findall(r"e\.g\.\s+(-[-\w]+ [^\s)]+)", " ".join(text.split()))


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory, small_sample) -> Path:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(small_sample, root / "data" / "raw" / "sample")
    return root


def as_check(argv: list[str]) -> list[list[str]]:
    """``retention-study run CONFIG... [-p ..] [--grid k=v1,v2]`` as ``check`` commands."""
    configs, params, grid, i = [], [], [], 1 if argv[:1] == ["run"] else 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-p", "--param"):
            params += ["-p", argv[i + 1]]
            i += 2
        elif arg == "--grid":
            key, values = argv[i + 1].split("=", 1)
            grid = [f"{key}={v}" for v in values.split(",")]
            i += 2
        elif arg in ("--jobs", "--out"):
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            configs.append(arg)
            i += 1
    configs = ["configs/default.yaml" if c in PLACEHOLDER_CONFIGS else c for c in configs]
    points = [["-p", g] for g in grid] or [[]]
    return [["check", c, *params, *p] for c in configs for p in points]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_the_readme_has_the_commands_this_test_knows(sample_root):
    kinds = {tuple(c[:2]) for c in readme_commands()}
    assert ("make", "report") in kinds and (".venv/bin/retention-study", "run") in kinds


def test_every_retention_study_command_of_the_readme_works_on_the_sample(
        sample_root, capsys, monkeypatch):
    monkeypatch.chdir(sample_root)
    ran = 0
    for argv in readme_commands():
        if not argv[0].endswith("retention-study"):
            continue
        args = ["configs/default.yaml" if a in PLACEHOLDER_CONFIGS else a for a in argv[1:]]
        for command in (as_check(args) if args[0] == "run" else [args]):
            status, output = run_cli(command, capsys)
            assert status == 0, (argv, command, output)
            assert "Traceback" not in output
            ran += 1
    assert ran >= 6


def test_the_inline_override_example_of_the_readme_works_on_the_sample(
        sample_root, capsys, monkeypatch):
    monkeypatch.chdir(sample_root)
    examples = re.findall(r"`((?:-p [\w.]+=\S+ ?)+)`", README)
    assert examples, "the README shows no -p example"
    for example in examples:
        status, output = run_cli(["check", "configs/default.yaml", *shlex.split(example)],
                                 capsys)
        assert status == 0, (example, output)


def test_every_example_in_run_help_works_on_the_sample(sample_root, capsys, monkeypatch):
    monkeypatch.chdir(sample_root)
    examples = help_examples()
    assert any(e.startswith("--grid") for e in examples), examples
    for example in examples:
        for command in as_check(["run", "configs/default.yaml", *shlex.split(example)]):
            status, output = run_cli(command, capsys)
            assert status == 0, (example, command, output)


def test_every_make_target_of_the_readme_exists():
    targets = [c[1] for c in readme_commands() if c[0] == "make"]
    assert {"report", "test", "lab", "lint", "bench", "clean"} <= set(targets)
    for target in targets:
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, (target, done.stderr)
    done = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert all(f"make {t}" in done.stdout for t in targets)


def test_the_papermill_commands_of_the_readme_run():
    """--help-notebook here; the two study runs in test_notebook_parameters.py."""
    commands = [c for c in readme_commands() if c[0].endswith("papermill")]
    assert len(commands) == 3
    (help_cmd,) = [c for c in commands if "--help-notebook" in c]
    done = subprocess.run([sys.executable, "-m", "papermill", *help_cmd[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    for name in ("name", "data", "study", "report", "results_path"):
        assert f"  {name}:" in done.stdout or f"  {name} " in done.stdout, done.stdout
