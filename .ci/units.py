#!/usr/bin/env python3
"""How many compilation units a sequence of cargo commands builds, counted from cargo's
unit graph without compiling (docs/PERFORMANCE.md, "CI time"). A unit is identified as
cargo's metadata hash identifies it: package, target, features, profile (without its
name: `dev` and `test` hash alike), mode, platform and its dependencies' identities.

    .ci/units.py 'build --bins' 'test --workspace --no-fail-fast'
"""
import json
import os
import subprocess
import sys


def units(args):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        ["cargo", *args, "--unit-graph", "-Z", "unstable-options"],
        capture_output=True, text=True, env=env, check=True,
    )
    graph = json.loads(out.stdout)["units"]
    memo = {}

    def ident(i):
        if i not in memo:
            u = graph[i]
            profile = {k: v for k, v in u["profile"].items() if k != "name"}
            deps = tuple(sorted(ident(d["index"]) for d in u["dependencies"]))
            memo[i] = hash((u["pkg_id"], u["target"]["name"], tuple(u["target"]["kind"]),
                            tuple(sorted(u["features"])), json.dumps(profile, sort_keys=True),
                            u["mode"], u.get("platform"), deps))
        return memo[i]

    return {ident(i) for i in range(len(graph))}


seen = set()
for command in sys.argv[1:]:
    now = units(command.split())
    print(f"cargo {command}: {len(now)} units, {len(now - seen)} not built by the commands before")
    seen |= now
print(f"distinct units: {len(seen)}")
