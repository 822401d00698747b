#!/usr/bin/env python3
"""The structure of src/, measured on the graph of imports between source files.

Usage: python3 scripts/import-graph.py [--report] [--edges] [--layers]

  --report   print only; exit 0 whatever the figures
  --edges    also print every edge (file -> file)
  --layers   also print each file with its layer
  --why A B  the paths in file A that make the edge A -> B

Exit status (without --report): 1 when there is an import cycle, an import that runs back
up the layers, a file over 500 lines, or a `begin()` call or an audit write under
src/http/; 0 otherwise. LINE_ALLOWLIST and EDGE_ALLOWLIST below name, with their
reason, the exceptions that another change owns for now.

The graph
---------
A node is a file under src/. An edge A -> B is any of, in A's code outside `#[cfg(test)]`
items:
  * a `use` tree (`use crate::…`, `use super::…`, `use self::…`, `use child::…` for a
    module `child` declared in A, with `{…}` groups, `as`, `self` and `*`);
  * a path in code: `crate::x::y`, `super::x`, `self::x::y`, `child::x` (and
    `tenantry::x` in src/main.rs, the binary that uses the library).
A path resolves to the deepest module that has a file (`a/b.rs` or `a/b/mod.rs`); when
the next segment is a name that file itself imports (`pub use fair::Lane` in
jobs/mod.rs, or a plain `use`), the edge follows that import to the file that defines
the name, so a facade `mod.rs` does not stand between a user and the definition. `mod`
declarations are read to know which modules exist; they are not edges (a parent
declaring its children is not a dependency), and neither is a submodule's use of its
own ancestors (`super::Rate` in rate_limit/allowance_slices.rs): a module and its submodules are one
unit, whose private items Rust shares with the children by design. A parent's use of a
child's items is an edge, and so is everything that leaves the module, so a cycle that
leaves a module and comes back through a parent is still found.

Layers, top to bottom (a file may import its own layer and any layer below it):
  0 entry      main, lib, cli, subsystem        the binary, its commands, and which
                                                subsystems each process runs
  1 http/app   http/**, app                     routes, extractors, handlers, the document;
                                                `App`: the configuration and the handles,
                                                built once, that the routes and the layer
                                                above hand out
  2 work       jobs/** but the queue below      workers, runner, promoter, reconciler, the
                                                job runtime they share, and jobs/handlers:
                                                what running a job does
  3 use cases  services/**, auth/** (but        one function per use case; the
               totp), jobs/{mod,queue,fair,     authentication of a request; the job queue
               backoff,record,watch,types/**}   and the job types and payloads
  4 policy     rbac/**                          permissions, system roles, the owner model
  5 infra      db/**, redis, lease, storage/**, pools and tenant scope, Redis, leases,
               aws, cache, telemetry(/**),      file backends, metrics, configuration, the
               config/**, background, auth/totp lifecycle of background tasks, TOTP and
                                                the sealing key the configuration holds
  6 floor      domain/**, error, text,          values that import nothing of ours
               client_address

Why `app` sits beside the routes: the services, the authentication, the job types and
the code that runs jobs take what they use (`&TenantPools`, `&Storage`, `&Meter`,
`&JobQueue`, a config section, or a handle that `App` builds once: `Invalidations`,
`Authenticator`, `Mailer`, `Issuer`, `Autoscaler`, `JobRuntime`), never `&App`; `App`
builds those handles, so it imports them and nothing below it imports it. It is not in
layer 0 with the commands and the subsystems because the routes take `AppState` as their
axum state; it imports nothing of http/**. What `App` holds must not import `App` back:
the cycle check keeps that.

Why the job queue sits with the services: a service that accepts work (submit a job,
send a message, clean up a file's uploads later) writes a row and pushes a message, as it
writes any table; the job types and their payloads are what it checks. The code that
*runs* a job (jobs/handlers, the worker, the runner) calls services, so it sits above.

`error` (AppError, FieldError) is on the floor: every layer returns it and it imports
nothing of ours.

Files over 500 lines: lines of the file minus the lines of its `#[cfg(test)]` items
(the unit tests beside the code); tests/ is not under src/ and is not counted.

`begin()` calls and audit writes under src/http/ are counted, and each fails the check:
the use case (transaction, policy, write, audit, commit, invalidation) belongs in the
service, and a handler parses, calls one service function and renders. An audit write
is a call of `audit::record…(`, or of a local `audit_…(` helper that wraps one.
"""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
MAX_LINES = 500

# Files over MAX_LINES that another change owns for now (not split here, to keep merges
# easy). Each entry says why; remove it once the file is split.
LINE_ALLOWLIST: set[str] = set()

# Imports that another change owns for now (files not restructured here, to keep merges
# easy). An allowlisted edge is listed but counts toward neither cycles nor back arrows;
# each entry says what removes it.
EDGE_ALLOWLIST: set[tuple[str, str]] = set()

# (module path prefix, layer, name). The longest prefix wins; a module under no prefix is
# an error, so a new top-level module is placed on purpose.
LAYERS = [
    ((), 0, "entry"),  # src/lib.rs, the crate root (exact match only)
    (("main",), 0, "entry"),
    (("cli",), 0, "entry"),
    (("subsystem",), 0, "entry"),
    (("http",), 1, "http/app"),
    (("app",), 1, "http/app"),
    (("jobs",), 2, "work"),
    (("services",), 3, "use cases"),
    (("auth",), 3, "use cases"),
    (("jobs", "mod"), 3, "use cases"),  # jobs/mod.rs: see layer_of
    (("jobs", "queue"), 3, "use cases"),
    (("jobs", "fair"), 3, "use cases"),
    (("jobs", "backoff"), 3, "use cases"),
    (("jobs", "record"), 3, "use cases"),
    (("jobs", "watch"), 3, "use cases"),
    (("jobs", "types"), 3, "use cases"),
    (("rbac",), 4, "policy"),
    # A crypto primitive (TOTP codes, the sealing of secrets): the configuration holds
    # its sealing key.
    (("auth", "totp"), 5, "infra"),
    (("db",), 5, "infra"),
    (("redis",), 5, "infra"),
    (("lease",), 5, "infra"),
    (("storage",), 5, "infra"),
    (("aws",), 5, "infra"),
    (("cache",), 5, "infra"),
    (("telemetry",), 5, "infra"),
    (("config",), 5, "infra"),
    (("background",), 5, "infra"),
    (("domain",), 6, "floor"),
    (("error",), 6, "floor"),
    (("text",), 6, "floor"),
    (("client_address",), 6, "floor"),
]


# ---------------------------------------------------------------------------------------
# Reading Rust, enough for paths


def strip_comments_and_strings(src: str) -> str:
    """Comments, string and char literals become spaces; newlines are kept."""
    out = []
    i, n = 0, len(src)

    def blank(s: str) -> str:
        return "".join(c if c == "\n" else " " for c in s)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', src[i:i + 260])) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = m.group(1)
            end = src.find('"' + hashes, i + m.end())
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"' or (c == "b" and src.startswith('b"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_"))):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(blank(src[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a); lifetimes stay.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])'", src[i:i + 12])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def match_brace(text: str, open_at: int) -> int:
    """Index just past the bracket matching the one at open_at."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = []
    for j in range(open_at, len(text)):
        ch = text[j]
        if ch in pairs:
            stack.append(pairs[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return j + 1
    return len(text)


CFG_TEST = re.compile(r"#\[cfg\(test\)\]")


def remove_test_items(text: str) -> tuple[str, int]:
    """Blank the items under `#[cfg(test)]`; returns (text, lines removed)."""
    removed_lines = 0
    while True:
        m = CFG_TEST.search(text)
        if not m:
            return text, removed_lines
        j = m.end()
        # Skip further attributes.
        while True:
            k = j
            while k < len(text) and text[k].isspace():
                k += 1
            if text.startswith("#[", k):
                j = match_brace(text, k + 1)
            else:
                j = k
                break
        # The item ends at `;` or at the end of its first `{…}` block, at depth 0.
        k = j
        while k < len(text) and text[k] not in ";{":
            if text[k] in "([":
                k = match_brace(text, k)
                continue
            k += 1
        end = k + 1 if k < len(text) and text[k] == ";" else match_brace(text, k)
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        span = text[line_start:line_end]
        removed_lines += span.count("\n") + 1
        # Blank the lines, keep one newline per removed line so numbering is unchanged.
        text = text[:line_start] + "\n" * span.count("\n") + text[line_end:]


def use_statements(text: str) -> list[tuple[list[str], str | None, int, int]]:
    """(path, bound name, start, end) for each leaf of each `use`."""
    found = []
    for m in re.finditer(r"(?<![\w:])use\s+", text):
        end = text.find(";", m.end())
        if end < 0:
            continue
        body = text[m.end():end]
        # Keep `as` aliases: parse_use_tree drops them from the path, note the binding.
        for leaf in _use_leaves(body, []):
            path, alias = leaf
            found.append((path, alias, m.start(), end + 1))
    return found


def _use_leaves(s: str, prefix: list[str]):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        part = part.strip()
        if not part:
            continue
        brace = part.find("{")
        if brace >= 0:
            head = re.sub(r"\s+", "", part[:brace]).strip(":")
            segs = [x for x in head.split("::") if x]
            inner = part[brace + 1:part.rfind("}")]
            yield from _use_leaves(inner, prefix + segs)
        else:
            alias = None
            am = re.match(r"(.*?)\s+as\s+(\w+)$", part, re.S)
            if am:
                part, alias = am.group(1), am.group(2)
            segs = [x for x in re.sub(r"\s+", "", part).lstrip(":").split("::") if x]
            path = prefix + segs
            if path and path[-1] == "self":
                path = path[:-1]
            if alias is None and path:
                alias = path[-1]
            if alias == "_":
                alias = None
            yield path, alias


PATH_IN_CODE = re.compile(r"(?<![\w:])((?:[A-Za-z_]\w*)(?:\s*::\s*[A-Za-z_]\w*)+)")


# ---------------------------------------------------------------------------------------
# The crate


class Crate:
    def __init__(self, src_dir: str):
        self.src = src_dir
        self.files: dict[tuple, str] = {}  # module path -> relative file
        self.text: dict[str, str] = {}  # file -> code without comments, strings, tests
        self.raw_lines: dict[str, int] = {}
        self.code_lines: dict[str, int] = {}
        self.children: dict[str, set[str]] = defaultdict(set)  # file -> declared mods
        self.bindings: dict[str, dict[str, list[str]]] = {}  # file -> name -> path
        self.globs: dict[str, list[list[str]]] = defaultdict(list)
        self.module_of: dict[str, tuple] = {}
        for dirpath, _, names in os.walk(src_dir):
            for name in names:
                if not name.endswith(".rs"):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, ROOT)
                parts = os.path.relpath(full, src_dir)[:-3].split(os.sep)
                if parts == ["lib"]:
                    mod = ()
                elif parts == ["main"]:
                    mod = ("main",)
                elif parts[-1] == "mod":
                    mod = tuple(parts[:-1])
                else:
                    mod = tuple(parts)
                self.files[mod] = rel
                self.module_of[rel] = mod
                with open(full, encoding="utf-8") as f:
                    raw = f.read()
                self.raw_lines[rel] = raw.count("\n") + (0 if raw.endswith("\n") else 1)
                text = strip_comments_and_strings(raw)
                text, removed = remove_test_items(text)
                self.code_lines[rel] = self.raw_lines[rel] - removed
                self.text[rel] = text
        for rel, text in self.text.items():
            for m in re.finditer(r"(?<![\w:])mod\s+(\w+)\s*[;{]", text):
                self.children[rel].add(m.group(1))
            b: dict[str, list[str]] = {}
            for path, alias, _, _ in use_statements(text):
                if path and path[-1] == "*":
                    self.globs[rel].append(path[:-1])
                elif alias:
                    b[alias] = path
            self.bindings[rel] = b

    def start(self, rel: str, first: str) -> tuple | None:
        """The module a path's first segment names, seen from file rel."""
        mod = self.module_of[rel]
        if first == "crate":
            return ()
        if first == "tenantry" and mod == ("main",):
            return ()
        if first == "self":
            return mod
        if first == "super":
            return mod[:-1] if mod else None
        if first in self.children[rel] and mod != ("main",):
            return mod + (first,)
        return None

    def resolve(self, rel: str, path: list[str], seen=None) -> str | None:
        """The file a path used in file rel leads to, or None (outside the crate)."""
        if not path:
            return None
        seen = seen or set()
        key = (rel, tuple(path))
        if key in seen:
            return None
        seen.add(key)
        base = self.start(rel, path[0])
        rest = path[1:]
        if base is None:
            # A name the file imported (`use crate::services::audit;` then `audit::x`).
            bound = self.bindings.get(rel, {}).get(path[0])
            if bound is not None and len(path) > 1:
                return self.resolve(rel, bound + rest, seen)
            return None
        while rest and rest[0] == "super":
            base = base[:-1]
            rest = rest[1:]
        mod = base
        i = 0
        while i < len(rest) and mod + (rest[i],) in self.files:
            mod = mod + (rest[i],)
            i += 1
        if mod not in self.files:
            return None
        target = self.files[mod]
        if i < len(rest) and rest[i] not in ("*", "self"):
            name = rest[i]
            bound = self.bindings.get(target, {}).get(name)
            if bound:
                through = self.resolve(target, bound + rest[i + 1:], seen)
                if through is not None:
                    return through
        return target

    def is_descendant(self, rel: str, target: str) -> bool:
        a, b = self.module_of[rel], self.module_of[target]
        return a != ("main",) and len(b) > len(a) and b[: len(a)] == a

    def edges(self, why: dict | None = None) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {rel: set() for rel in self.text}
        for rel, text in self.text.items():
            paths = []
            for p, _, start, _ in use_statements(text):
                # `pub use child::Item` in a parent is the facade that shows its children,
                # like `mod child;`: not a dependency of the parent.
                if re.match(r"pub\b", text[max(0, start - 16):start].split("\n")[-1].strip() or "x") and p:
                    target = self.resolve(rel, p[:-1] if p[-1] == "*" else p)
                    if target and self.is_descendant(rel, target):
                        continue
                paths.append(p)
            # Paths in code, outside `use` statements and `pub(in …)`.
            code = re.sub(r"(?<![\w:])use\s+[^;]*;", " ", text)
            code = re.sub(r"pub\s*\(\s*in\s+[^)]*\)", " ", code)
            for m in PATH_IN_CODE.finditer(code):
                paths.append(re.sub(r"\s+", "", m.group(1)).split("::"))
            for path in paths:
                if path and path[-1] == "*":
                    path = path[:-1]
                    if not path:
                        continue
                target = self.resolve(rel, path)
                # A submodule using its parent's shared items (`super::Rate`) is inside
                # one module: Rust gives a child its ancestors' private items by design.
                if target and self.is_descendant(target, rel):
                    continue
                if target and target != rel:
                    graph[rel].add(target)
                    if why is not None:
                        why.setdefault((rel, target), []).append("::".join(path))
        return graph


def layer_of(mod: tuple, rel: str = "") -> tuple[int, str]:
    if rel.endswith("/mod.rs"):
        # A directory's mod.rs is placed by the key (dir, "mod") when there is one.
        for prefix, layer, name in LAYERS:
            if prefix == mod + ("mod",):
                return layer, name
    best = None
    for prefix, layer, name in LAYERS:
        if prefix == () and mod != ():
            continue
        if mod[: len(prefix)] == prefix and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer, name)
    if best is None:
        raise SystemExit(f"import-graph: no layer for module {'::'.join(mod)}: add it to LAYERS")
    return best[1], best[2]


def tarjan(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def count_in_http(crate: Crate) -> tuple[int, int, list[str]]:
    """`begin()` calls and audit writes under src/http/, and the files that hold them."""
    begins = audits = 0
    where = []
    for rel, text in sorted(crate.text.items()):
        if not rel.startswith("src/http/"):
            continue
        b = len(re.findall(r"\.\s*begin\s*\(", text))
        # Calls of the audit service's writers, and of local helpers wrapping them.
        a = len(re.findall(r"\baudit\s*::\s*record\w*\s*\(", text))
        a += len(re.findall(r"(?<!fn )(?<![\w:])audit_\w+\s*\(", text))
        if b or a:
            where.append(f"  {rel}: begin() {b}, audit writes {a}")
        begins += b
        audits += a
    return begins, audits, where


def main(argv: list[str]) -> int:
    report_only = "--report" in argv
    crate = Crate(SRC)
    why: dict = {}
    graph = crate.edges(why)
    allowed_edges = sorted((a, b) for a, b in EDGE_ALLOWLIST if b in graph.get(a, ()))
    for a, b in allowed_edges:
        graph[a].discard(b)
    if "--why" in argv:
        i = argv.index("--why")
        a, b = argv[i + 1], argv[i + 2]
        print(f"{a} -> {b}: " + ", ".join(sorted(set(why.get((a, b), [])))))
        return 0
    cycles = tarjan(graph)
    back = []
    for a, targets in sorted(graph.items()):
        la = layer_of(crate.module_of[a], a)
        for b in sorted(targets):
            lb = layer_of(crate.module_of[b], b)
            if lb[0] < la[0]:
                back.append((a, la, b, lb))
    big = sorted(
        ((n, rel) for rel, n in crate.code_lines.items() if n > MAX_LINES),
        reverse=True,
    )
    begins, audits, in_http = count_in_http(crate)

    if "--layers" in argv:
        print("== layers")
        for rel in sorted(crate.text, key=lambda r: (layer_of(crate.module_of[r], r), r)):
            layer = layer_of(crate.module_of[rel], rel)
            print(f"  {layer[0]} {layer[1]:<12} {rel}")
    if "--edges" in argv:
        print("== edges")
        for a in sorted(graph):
            for b in sorted(graph[a]):
                print(f"  {a} -> {b}")

    n_edges = sum(len(t) for t in graph.values())
    print(f"files: {len(crate.text)}, imports between files: {n_edges}")
    in_cycles = sum(len(c) for c in cycles)
    print(f"import cycles: {len(cycles)} (files in them: {in_cycles})")
    for comp in cycles:
        print("  " + " <-> ".join(comp))
        members = set(comp)
        for a in comp:
            for b in sorted(graph[a] & members):
                print(f"      {a} -> {b}")
    print(f"back arrows (lower layer imports a higher one): {len(back)}")
    for a, la, b, lb in back:
        print(f"  {a} ({la[1]}) -> {b} ({lb[1]})")
    if allowed_edges:
        print(f"allowlisted imports (not counted): {len(allowed_edges)}")
        for a, b in allowed_edges:
            print(f"  {a} -> {b}")
    print(f"files over {MAX_LINES} lines (without #[cfg(test)] items): {len(big)}")
    failing_big = []
    for n, rel in big:
        allowed = rel in LINE_ALLOWLIST
        if not allowed:
            failing_big.append(rel)
        note = "  (allowlisted)" if allowed else ""
        print(f"  {n:5} {rel} ({crate.raw_lines[rel]} with tests){note}")
    largest = sorted(((n, rel) for rel, n in crate.code_lines.items()), reverse=True)[:5]
    print("largest files: " + ", ".join(f"{rel} {n}" for n, rel in largest))
    print(f"in src/http/: begin() calls: {begins}, audit writes: {audits}")
    for line in in_http:
        print(line)

    if report_only:
        return 0
    return 1 if cycles or back or failing_big or begins or audits else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
