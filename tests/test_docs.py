"""The pages a user reads: README.md is one page, and every relative link of it and of docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_readme_is_one_page_and_names_every_doc():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert len(PAGES) > 5 and all(f"docs/{page.name}" in readme for page in PAGES[1:])


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor of the same page
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def test_no_page_sends_a_user_to_a_folder_outside_the_repository():
    for page in PAGES:
        assert "../shared" not in page.read_text(), page.name


def test_ci_installs_and_tests_as_the_readme_says():
    readme, ci = (REPO / "README.md").read_text(), (REPO / ".ci" / "run").read_text()
    testing = readme.split("## Testing", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    (command,) = [line.split("#")[0].strip() for line in testing.splitlines() if line.strip()]
    assert ci.rstrip().splitlines()[-1] == command
    install = readme.split("## Install", 1)[1].split("```", 2)[1]
    cpu_install = next(line for line in install.splitlines() if "torch==" in line).split("#")[0].strip()
    assert cpu_install in ci.replace("pip install -q ", "pip install ")  # CI installs quietly
