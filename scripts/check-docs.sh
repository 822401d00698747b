#!/usr/bin/env bash
# Keeps the docs true where a check can:
#   (a) every metric the code registers (the tenantry_* names inside metrics::counter!,
#       gauge!, histogram! and describe_*! calls in src/) is in docs/observability.md;
#   (b) every environment variable Config reads (the UPPER_CASE string literals of
#       src/config/*.rs, its sections, outside their tests) is in README.md and in
#       .env.example;
#   (c) every relative link of README.md, CONTRIBUTING.md and docs/*.md resolves to a file
#       inside the repository (and its #fragment, on a markdown page, to a heading).
# Prints each failure as file:line: message and exits 1 if there is any.
# Needs bash and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os
import re
import sys
from pathlib import Path

root = Path.cwd().resolve()
failures = []


def fail(path, line, message):
    failures.append(f"{path}:{line}: {message}")


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def strip_rust_comments(text):
    """Blanks // and /* */ comments (keeping offsets and newlines), not inside strings."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif text.startswith("r#\"", i) or text.startswith('r"', i):
            hashes = text[i + 1 : text.index('"', i)].count("#")
            end = text.find('"' + "#" * hashes, text.index('"', i) + 1)
            i = n if end < 0 else end + 1 + hashes
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            i += len(re.match(r"'(\\.|[^\\'])'", text[i : i + 4]).group(0))
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            for k in range(i, end):
                out[k] = " "
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for k in range(i, end):
                if out[k] != "\n":
                    out[k] = " "
            i = end
        else:
            i += 1
    return "".join(out)


def macro_args(text, open_paren):
    """The text between the parenthesis at open_paren and its match (strings respected)."""
    depth, i, n = 0, open_paren, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1 : i]
        i += 1
    return text[open_paren + 1 :]


# (a) metrics ---------------------------------------------------------------------------
MACRO = re.compile(
    r"\b(?:metrics::)?(counter|gauge|histogram|describe_counter|describe_gauge|describe_histogram)!\s*\("
)
METRIC = re.compile(r'"(tenantry_[a-z0-9_]+)"')
registered = {}
for path in sorted(Path("src").rglob("*.rs")):
    text = strip_rust_comments(path.read_text(encoding="utf-8"))
    for m in MACRO.finditer(text):
        for name in METRIC.findall(macro_args(text, m.end() - 1)):
            registered.setdefault(name, (path, line_of(text, m.start())))
observability = Path("docs/observability.md")
documented = set(re.findall(r"tenantry_[a-z0-9_]+", observability.read_text(encoding="utf-8")))
if not registered:
    fail("src", 0, "no tenantry_* metric found in a metrics macro: the check is broken")
for name, (path, line) in sorted(registered.items()):
    if name not in documented:
        fail(path, line, f"metric {name} is registered but not in {observability}")

# (b) configuration variables -----------------------------------------------------------
config_dir = Path("src/config")
variables = {}
for config_path in sorted(config_dir.rglob("*.rs")):
    config = config_path.read_text(encoding="utf-8")
    tests_at = re.search(r"^#\[cfg\(test\)\]", config, re.M)
    body = strip_rust_comments(config[: tests_at.start()] if tests_at else config)
    for m in re.finditer(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{2,})"', body):
        variables.setdefault(m.group(1), (config_path, line_of(body, m.start())))
if not variables:
    fail(config_dir, 0, "no variable name found: the check is broken")
readme = Path("README.md").read_text(encoding="utf-8")
env_example = Path(".env.example").read_text(encoding="utf-8")
in_readme = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", readme))
in_env = {
    m.group(1)
    for m in re.finditer(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", env_example, re.M)
}
for name, (config_path, line) in sorted(variables.items()):
    if name not in in_readme:
        fail(config_path, line, f"variable {name} is read by Config but not in README.md")
    if name not in in_env:
        fail(config_path, line, f"variable {name} is read by Config but not in .env.example")

# (c) relative links --------------------------------------------------------------------
LINK = re.compile(r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)


def without_code(text):
    """Blanks fenced code blocks and inline code spans, keeping line numbers."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", blank, text, flags=re.M | re.S)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", blank, text, flags=re.S)


def anchors(page):
    """The heading anchors GitHub gives a markdown page (duplicates get -1, -2, ...)."""
    seen, found = {}, set()
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


pages = [Path("README.md"), Path("CONTRIBUTING.md")] + sorted(Path("docs").glob("*.md"))
for page in pages:
    if not page.exists():
        continue
    text = without_code(page.read_text(encoding="utf-8"))
    targets = [(m.group(1), m.start()) for rx in (LINK, IMAGE, REFERENCE) for m in rx.finditer(text)]
    for target, offset in targets:
        line = line_of(text, offset)
        if re.match(r"^(https?:|mailto:)", target, re.I):
            continue
        if target.startswith("#"):
            if target[1:] not in anchors(page):
                fail(page, line, f"link {target}: no such heading in {page}")
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            fail(page, line, f"link {target}: not a relative link to a file of the repository")
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path.startswith("/"):
            fail(page, line, f"link {target}: absolute path; link relative to {page}")
            continue
        resolved = (root / page.parent / path).resolve()
        if resolved != root and root not in resolved.parents:
            fail(page, line, f"link {target}: leaves the repository")
        elif not resolved.exists():
            fail(page, line, f"link {target}: no such file")
        elif "#" in target and resolved.suffix == ".md":
            fragment = target.split("#", 1)[1]
            if fragment not in anchors(resolved):
                fail(page, line, f"link {target}: no such heading in {path}")

for failure in failures:
    print(failure)
if failures:
    print(f"docs check: {len(failures)} failure(s)")
    sys.exit(1)
print(
    f"docs check passed: {len(registered)} metrics, {len(variables)} variables, "
    f"{len(pages)} pages' links"
)
PY
