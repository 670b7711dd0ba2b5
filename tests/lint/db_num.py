#!/usr/bin/env python3
"""db_num.py - DB_NUM's text lives no longer than the block it is written in (TAP).

DB_NUM(v) (include/crier/db.h) formats into a compound literal, whose storage ends with the
enclosing block. In an initializer (const char *params[] = {DB_NUM(id)};) that is the
array's own block, so every use of the array is safe. Assigned to a variable declared in an
outer block (params[0] = DB_NUM(id); inside an if), returned, or stored through a pointer
(out->text = DB_NUM(id)), the pointer outlives the text: a dangling pointer that no
compiler warning catches. This check fails on each of those.
It reads C as text (braces in strings and comments are skipped), which is enough for
crier's formatted code; it first proves on a planted sample that it can fail.
"""
import os
import re
import sys
import tempfile

ASSIGN = re.compile(r"\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*=\s*DB_NUM\(")


def code_only(line, in_comment):
    """The line without string literals and comments; and whether a comment stays open."""
    out = []
    i = 0
    while i < len(line):
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_comment = end + 2, False
        elif line.startswith("/*", i):
            in_comment, i = True, i + 2
        elif line.startswith("//", i):
            break
        elif line[i] in "\"'":
            quote, i = line[i], i + 1
            while i < len(line) and line[i] != quote:
                i += 2 if line[i] == "\\" else 1
            i += 1
            out.append('""')
        else:
            out.append(line[i])
            i += 1
    return "".join(out), in_comment


DECLARATION = re.compile(r"\s*(?:static\s+)?(?:const\s+)?(?:unsigned\s+)?"
                         r"(?:char|int|long|size_t|int64_t|bool|double)\b(.*)")


def declared_names(code):
    """The names a declaration statement on this line declares, if it is one."""
    m = DECLARATION.match(code)
    if m is None:
        return []
    rest = m.group(1)
    # drop what is bracketed (sizes, initializers, calls), innermost first
    previous = None
    while previous != rest:
        previous = rest
        rest = re.sub(r"\[[^\[\]]*\]|\{[^{}]*\}|\([^()]*\)", "", rest)
    rest = re.sub(r"=[^,;]*", "", rest)
    names = []
    for part in rest.split(","):
        n = re.match(r"[\s*]*(?:const\s+)?\**\s*([A-Za-z_]\w*)", part)
        if n:
            names.append(n.group(1))
    return names


def problems(path):
    """(line, name) of each DB_NUM assigned to a variable declared in an outer block."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    found = []
    scopes = [{}]  # a dict of the names declared in each open block: name -> depth
    in_comment = False
    for number, raw in enumerate(lines, 1):
        code, in_comment = code_only(raw, in_comment)
        depth = len(scopes) - 1
        # the names a declaration on this line declares, at this depth ("type a[2], *b = x;")
        for name in declared_names(code):
            scopes[-1][name] = depth
        # returned, or stored through a pointer: it outlives the block wherever it goes
        for m in re.finditer(r"\breturn\s+DB_NUM\(|->\s*([A-Za-z_]\w*)\s*=\s*DB_NUM\(", code):
            found.append((number, m.group(1) or "return"))
        for m in ASSIGN.finditer(code):
            if code[:m.start()].rstrip().endswith("->"):
                continue  # said above
            name = m.group(1)
            before = code[:m.start()].rstrip()
            if re.search(r"\b(?:char|const|int|long|size_t|int64_t)\b[\s*]*$", before):
                continue  # a declaration with its initializer: the same block
            declared = None
            for scope in reversed(scopes):
                if name in scope:
                    declared = scope[name]
                    break
            if declared is not None and declared < depth:
                found.append((number, name))
        for ch in code:
            if ch == "{":
                scopes.append({})
            elif ch == "}" and len(scopes) > 1:
                scopes.pop()
    return found


def c_files(root):
    for top in ("engine", "channels", "config"):
        for base, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if name.endswith(".c"):
                    yield os.path.join(base, name)


def main():
    src = os.environ.get("SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
    count = failed = 0

    def ok(good, text, diag=""):
        nonlocal count, failed
        count += 1
        print(("ok" if good else "not ok") + f" {count} - {text}")
        if not good:
            failed += 1
            for line in diag.splitlines():
                print("# " + line)

    planted = (
        "static int f(struct crier_db *db, long id, bool twice)\n"
        "{\n"
        "    const char *params[2], *one = NULL;\n"
        "    if (twice) {\n"
        "        params[0] = DB_NUM(id);\n"
        "        one = DB_NUM(id); /* params[0] = DB_NUM(id) in a comment */\n"
        "    }\n"
        "    const char *fine[] = {DB_NUM(id)};\n"
        "    params[1] = DB_NUM(id);\n"
        "    if (!twice)\n"
        "        return use(DB_NUM(id)); /* a call: the text outlives it */\n"
        "    out->text = DB_NUM(id);\n"
        "    return db_exec(db, \"SELECT $1\", 1, params) + db_exec(db, \"x\", 1, fine);\n"
        "}\n"
        "static const char *text_of(long id)\n"
        "{\n"
        "    return DB_NUM(id);\n"
        "}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as sample:
        sample.write(planted)
    try:
        hits = problems(sample.name)
    finally:
        os.unlink(sample.name)
    ok(hits == [(5, "params"), (6, "one"), (12, "text"), (17, "return")],
       "the check finds planted DB_NUMs assigned inside an inner block, returned or stored "
       "through a pointer, and only them",
       repr(hits))

    report = []
    sites = 0
    for path in c_files(src):
        with open(path, encoding="utf-8", errors="replace") as f:
            sites += f.read().count("DB_NUM(")
        for number, name in problems(path):
            report.append(f"{os.path.relpath(path, src)}:{number}: {name} outlives DB_NUM's text")
    ok(not report, f"no DB_NUM outlives its block ({sites} uses read)", "\n".join(report))
    ok(sites > 0, "DB_NUM is found where it is used (the check reads the right tree)")
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
