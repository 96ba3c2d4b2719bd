"""The README is the front door: short, its layout matches the tree, and its commands run as written.

The slow test plays a new user: a copy of the checkout (what a fresh clone holds) in a virtual environment
of its own, where the README's first command installs the package and runs the quickstart, then every
command under "After the quickstart" runs verbatim from the copy's root. The second command of the README
(the test suite) is what CI runs around this very test, so it is not run from here.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_LINES = 300


def bash_blocks(markdown: str) -> list:
    """The contents of the ```bash blocks of ``markdown``, in order."""
    return re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.M | re.S)


def section(markdown: str, heading: str) -> str:
    """The text under the level-2 ``heading`` (up to the next level-2 heading)."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def layout_paths(markdown: str) -> list:
    """Every path named in the ```text block of the Layout section (the first word of each line)."""
    block = re.search(r"^```text\n(.*?)^```", section(markdown, "Layout"), flags=re.M | re.S)
    assert block, "the Layout section has no ```text block"
    words = (line.strip().split()[0] for line in block.group(1).splitlines() if line.strip())
    return [word for word in words if "/" in word or "." in word]


def test_readme_is_short_and_keeps_the_two_commands_first():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES
    install, tests = bash_blocks(text)[:2]
    assert install.strip() == "pip install -r requirements.txt && bash tools/quickstart.sh"
    assert tests.strip() == "pip install -r requirements-test.txt && python -m pytest -q"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.strip() in ci


def test_layout_matches_the_tree():
    named = layout_paths(README.read_text(encoding="utf-8"))
    missing = [path for path in named if not (REPO / path.rstrip("/")).exists()]
    assert not missing, f"README's layout names paths that do not exist: {missing}"
    expected = [path.relative_to(REPO).as_posix() for path in (REPO / "paddlenlp_fastformer").glob("*.py")]
    application = REPO / "fastformer_zoo"
    expected += [path.relative_to(REPO).as_posix() for path in application.glob("*.py") if path.name != "__init__.py"]
    expected += [f"{path.relative_to(REPO).as_posix()}/" for path in application.iterdir() if (path / "__init__.py").is_file()]
    expected += [path.relative_to(REPO).as_posix() for path in (REPO / "tools").glob("*.py")]
    absent = [path for path in expected if path not in named and not path.endswith("__init__.py")]
    assert not absent, f"README's layout leaves out: {absent}"


def test_readme_links_resolve():
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to {target}, which does not exist"


def checkout_files() -> list:
    """The files a fresh clone of this working tree holds (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    return [name for name in listed if name and (REPO / name).is_file()]


def run_bash(script: str, cwd: Path, env: dict, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_readme_commands_run_verbatim_on_a_fresh_clone(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the README's serving example uses it")
    clone = tmp_path / "main"
    for name in checkout_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    if (REPO.parent / "shared").is_dir():  # the real data beside the clone, as beside this checkout
        (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    # The clone's own environment: the installed stack is seen (nothing large is downloaded), the package
    # itself is installed from the clone by the README's command.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=600)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    text = README.read_text(encoding="utf-8")

    quickstart = run_bash(bash_blocks(text)[0], clone, env, timeout=3000)
    assert quickstart.returncode == 0, quickstart.stdout[-3000:] + quickstart.stderr[-3000:]
    assert str(clone) in subprocess.run(
        ["python", "-c", "import paddlenlp_fastformer, fastformer_zoo; print(paddlenlp_fastformer.__file__, fastformer_zoo.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    last_lines = quickstart.stdout.strip().splitlines()[-8:]
    assert any("output/quickstart/best" in line for line in last_lines), last_lines
    for path in ("output/quickstart/best/config.json", "output/quickstart/training_curve.png", "output/quickstart/test_metrics.json"):
        assert (clone / path).is_file(), path
    metrics = (clone / "output/quickstart/test_metrics.json").read_text()

    blocks = bash_blocks(section(text, "After the quickstart"))
    assert any("tools/export_model.py" in block for block in blocks) and any("tools/serve.py" in block for block in blocks)
    for block in blocks:
        completed = run_bash(block, clone, env, timeout=900)
        assert completed.returncode == 0, (block, completed.stdout[-2000:], completed.stderr[-3000:])
        if "curl" in block:
            assert '"label"' in completed.stdout or '"labels"' in completed.stdout, completed.stdout[-2000:]

    # A second run reuses its data and its finished run (evaluated again, not trained again).
    again = run_bash("bash tools/quickstart.sh", clone, env, timeout=3000)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing data/quickstart" in again.stdout and "resuming the run in output/quickstart" in again.stdout, again.stdout[:2000]
    assert (clone / "output/quickstart/test_metrics.json").read_text() == metrics
