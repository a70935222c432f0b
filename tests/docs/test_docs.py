"""The documentation the repo holds: a short README that links every page of docs/, no `docs/…` path named in
code, templates or docs that does not exist, relative links and their anchors that resolve, no pointer to
documents outside the repo, and a configuration page that lists every variable of .env.example."""

import re
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCS = PROJECT_DIR / "docs"
README = PROJECT_DIR / "README.md"

# Files that may name docs: code, templates, configuration, docs; not what is vendored or generated.
SCANNED_SUFFIXES = {".py", ".html", ".js", ".toml", ".yml", ".yaml", ".conf", ".acl", ".sh", ".md", ".example", ".txt"}
SCANNED_NAMES = {"Makefile", "Dockerfile", "run"}
SKIPPED_DIRS = {".venv", ".git", "node_modules", "vendor", "var", "staticfiles", "hub.egg-info", "__pycache__"}

# A file under `docs/` named from the project's root (with its anchor, if any); not the API's URL `/v1/docs/errors`.
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/(?:[\w.-]+/)*[\w-]+\.[a-z]+(?:#[\w-]+)?")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def scanned_files() -> list[Path]:
    found = []
    for path in PROJECT_DIR.rglob("*"):
        if any(part in SKIPPED_DIRS for part in path.relative_to(PROJECT_DIR).parts[:-1]):
            continue
        if path.is_file() and (path.suffix in SCANNED_SUFFIXES or path.name in SCANNED_NAMES):
            found.append(path)
    return found


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces as '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(title) for title in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def broken(target: Path, anchor: str) -> str | None:
    if not target.exists():
        return "no such file"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading #{anchor}"
    return None


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the rest belongs under docs/"


def test_the_readme_links_every_docs_page():
    readme = README.read_text()
    linked = {(PROJECT_DIR / target.split("#")[0]).resolve() for target in MARKDOWN_LINK.findall(readme)}
    assert doc_pages(), "docs/ holds the documentation"
    assert [page.relative_to(PROJECT_DIR).as_posix() for page in doc_pages() if page.resolve() not in linked] == []


def test_docs_index_lists_every_page():
    index = DOCS / "index.md"
    linked = {(index.parent / target.split("#")[0]).resolve() for target in MARKDOWN_LINK.findall(index.read_text())}
    pages = [page for page in doc_pages() if page != index]
    missing = [page.relative_to(DOCS).as_posix() for page in pages if page.resolve() not in linked]
    assert missing == []


def test_every_docs_path_named_anywhere_exists():
    problems = []
    for path in scanned_files():
        for name in DOCS_PATH.findall(path.read_text(errors="replace")):
            file, _, anchor = name.partition("#")
            reason = broken(PROJECT_DIR / file, anchor)
            if reason:
                problems.append(f"{path.relative_to(PROJECT_DIR)}: {name} ({reason})")
    assert problems == []


def test_relative_links_in_the_readme_and_docs_resolve():
    problems = []
    for page in [README, *doc_pages()]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            reason = broken(page.parent / file if file else page, anchor)
            if reason:
                problems.append(f"{page.relative_to(PROJECT_DIR)}: {target} ({reason})")
    assert problems == []


def test_nothing_points_to_documents_outside_the_repo():
    """Facts the code relies on are written in docs/; a comment names those pages, not notes kept elsewhere."""
    outside = re.compile(
        r"PITFALLS|ARCHITECTURE\b|Convention \d|(?<![/}\w])shared/|specs/|(?:rest-api|panstamp-swap|signed-links)\.md"
        r"|\b[Tt]he (?:blog )?post\b"
        r"|README,? \""  # a README section: those moved to docs/
    )
    found = []
    for path in scanned_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if outside.search(line):
                found.append(f"{path.relative_to(PROJECT_DIR)}:{number}: {line.strip()}")
    assert found == []


def test_the_configuration_page_lists_every_variable_of_env_example():
    example = (PROJECT_DIR / ".env.example").read_text()
    variables = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    page = (DOCS / "configuration.md").read_text()
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", page, re.MULTILINE))
    assert variables, ".env.example lists the variables"
    assert sorted(variables - listed) == [], "docs/configuration.md misses variables"
    assert sorted(listed - variables) == [], "docs/configuration.md lists variables .env.example does not"
