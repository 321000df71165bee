#!/usr/bin/python3
"""check-docs.py ACCEL -- the user docs agree with the binary (part of `make test`;
alone: `make docs-check`, or `python3 scripts/check-docs.py build/accel`).

Fails (exit 1, one line per problem) when:
  - docs/guide.md or docs/vcl-lite.md name a -p parameter that `accel -h` does
    not list: `-p NAME`, a row of the guide's parameter table, or a
    `name` written as an "option" or "parameter";
  - a parameter `accel -h` lists is missing from the guide's parameter table;
  - README.md, docs/guide.md or docs/vcl-lite.md name a file of the repository
    (docs/..., scripts/..., tests/...) that does not exist;
  - the user docs (README.md, guide, vcl-lite, caching) mention internal issue
    numbers ("issue 5").
Standard library only.
"""

import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PARAM_DOCS = ["docs/guide.md", "docs/vcl-lite.md"]
FILE_DOCS = ["README.md", "docs/guide.md", "docs/vcl-lite.md", "docs/caching.md"]
USER_DOCS = ["README.md", "docs/guide.md", "docs/vcl-lite.md", "docs/caching.md"]


def read(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8") as f:
        return f.read()


def cli_params(accel):
    out = subprocess.run([accel, "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         check=True).stdout.decode()
    lines = out.split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith("parameters"))
    return {l.split()[0] for l in lines[start + 1:] if l.startswith("  ") and l.split()}


def guide_table(text):
    """Parameter names in the rows of the guide's "## Parameters" table."""
    m = re.search(r"^## Parameters.*?$(.*?)^## ", text, re.S | re.M)
    if not m:
        return None
    return re.findall(r"^\| `([a-z_][a-z0-9_]*)` \|", m.group(1), re.M)


def named_params(text):
    """(line, name) of every parameter a document names."""
    found = []
    for n, line in enumerate(text.split("\n"), 1):
        for m in re.finditer(r"-p\s+`?([a-z_][a-z0-9_]*)", line):
            found.append((n, m.group(1)))
        for m in re.finditer(r"`([a-z_][a-z0-9_]*)`\s+(?:option|parameter)\b", line):
            found.append((n, m.group(1)))
        for m in re.finditer(r"\b(?:option|parameter)s?\s+`([a-z_][a-z0-9_]*)`", line):
            found.append((n, m.group(1)))
    return found


def main():
    accel = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "accel")
    params = cli_params(accel)
    problems = []
    for rel in PARAM_DOCS:
        text = read(rel)
        for n, name in named_params(text):
            if name not in params:
                problems.append("%s:%d: names parameter '%s', which `accel -h` does not list"
                                % (rel, n, name))
    table = guide_table(read("docs/guide.md"))
    if table is None:
        problems.append("docs/guide.md: no '## Parameters' section")
    else:
        for name in table:
            if name not in params:
                problems.append("docs/guide.md: parameter table row '%s' is not in `accel -h`"
                                % name)
        for name in sorted(params - set(table)):
            problems.append("docs/guide.md: parameter '%s' (in `accel -h`) is missing from the "
                            "parameter table" % name)
    for rel in FILE_DOCS:
        for n, line in enumerate(read(rel).split("\n"), 1):
            for m in re.finditer(r"(?<![\w/.])((?:docs|scripts|tests)/[\w./*-]*[\w*])", line):
                path = m.group(1)
                if not glob.glob(os.path.join(REPO, path)):
                    problems.append("%s:%d: names %s, which does not exist" % (rel, n, path))
    for rel in USER_DOCS:
        for n, line in enumerate(read(rel).split("\n"), 1):
            if re.search(r"\b[Ii]ssues? #?\d+", line):
                problems.append("%s:%d: internal issue number in a user document: %s"
                                % (rel, n, line.strip()[:80]))
    for p in problems:
        print("check-docs: " + p)
    if problems:
        print("check-docs: %d problem(s)" % len(problems))
        return 1
    print("check-docs: docs agree with %s -h (%d parameters)" % (os.path.basename(accel),
                                                                len(params)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
