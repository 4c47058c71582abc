#!/usr/bin/env python3
"""The library's layers (docs/ARCHITECTURE.md): fail when a module imports a layer it
may not. domain imports nothing of the others; ports only domain; app and adapters
only domain and ports; inbound anything. `crate::` paths are checked in code (comments
and doc links are not imports), tests included. KNOWN lists crossings still allowed
(none): an entry that no longer occurs fails too, so the list only shrinks.

Usage: scripts/check_layers.py [shared/src]"""
import pathlib
import re
import sys

ALLOWED = {
    "domain": set(),
    "ports": {"domain"},
    "app": {"domain", "ports"},
    "adapters": {"domain", "ports"},
    "inbound": {"domain", "ports", "app", "adapters"},
}

# (file under shared/src, layer it reaches): crossings still allowed. Empty since issue
# 9 removed the last; keep it so (an entry that no longer occurs fails too).
KNOWN: set = set()

PATH = re.compile(r"\bcrate::(domain|ports|app|adapters|inbound)\b")


def code_of(line: str) -> str:
    # Drop comments (`//`, `///`, `//!`) but keep string contents out of the way too.
    line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
    return line.split("//", 1)[0]


def crossings(root: pathlib.Path):
    found = {}
    for path in sorted(root.rglob("*.rs")):
        rel = path.relative_to(root).as_posix()
        layer = rel.split("/", 1)[0]
        if layer not in ALLOWED:
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            for target in PATH.findall(code_of(line)):
                if target != layer and target not in ALLOWED[layer]:
                    found.setdefault((rel, target), []).append(no)
    return found


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "shared/src")
    found = crossings(root)
    bad = 0
    for (rel, target), lines in sorted(found.items()):
        if (rel, target) not in KNOWN:
            layer = rel.split("/", 1)[0]
            print(f"{root}/{rel}:{lines[0]}: {layer} may not import {target} "
                  f"(allowed: {', '.join(sorted(ALLOWED[layer])) or 'nothing'})")
            bad += 1
    for rel, target in sorted(KNOWN - set(found)):
        print(f"{root}/{rel}: no longer imports {target}: remove it from KNOWN in {__file__}")
        bad += 1
    known = len(KNOWN & set(found))
    print(f"layers: {bad} violation(s), {known} known crossing(s) left", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
