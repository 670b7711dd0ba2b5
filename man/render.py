#!/usr/bin/env python3
"""render.py TEMPLATE OUTPUT CRIER [EXAMPLE_YAML] - one scdoc man page source from its
hand-written template (man/*.scd.in) and the crier binary just built.

The prose is written by hand; what the binary itself says is pasted in at build time, so
the man pages and --help cannot drift:
  @COMMANDS@  each command of the page's group (crier-GROUP.1: GROUP from the file name;
              crier.1: every command), as `crier COMMAND --help` prints it
  @USAGE@     `crier --help` up to its command list (the global options)
  @SYNOPSES@  every command's synopsis, as `crier --help` lists them
  @EXAMPLE@   the example configuration, every key with its default (crier.yaml.5)
  @VERSION@   `crier --version`
"""
import os
import re
import subprocess
import sys

template, output, crier = sys.argv[1:4]
crier = os.path.abspath(crier)  # meson passes it relative to the build directory
example = sys.argv[4] if len(sys.argv) > 4 else None


def run(*args):
    return subprocess.run([crier, *args], check=True, capture_output=True, text=True).stdout


def literal(text):
    return "```\n" + text.rstrip("\n") + "\n```\n"


help_text = run("--help")
commands = [line[len("  crier "):] for line in help_text.splitlines() if line.startswith("  crier ")]
base = os.path.basename(template)
match = re.match(r"crier-([a-z]+)\.1\.scd\.in$", base)
group = match.group(1) if match else None

sections = []
for usage in commands:
    words = usage.split()
    if group and words[0] != group:
        continue
    # "campaign load NAME ...": a group and a name; "run [--until-idle]": one word
    name = words[:2] if len(words) > 1 and re.match(r"^[a-z][a-z-]*$", words[1]) else words[:1]
    text = run(*name, "--help")
    sections.append("## crier " + " ".join(name) + "\n\n" + literal(text))

page = open(template, encoding="utf-8").read()
page = page.replace("@COMMANDS@", "\n".join(sections))
page = page.replace("@USAGE@", literal(help_text.split("\ncommands:")[0]))
page = page.replace("@SYNOPSES@", literal("\n".join("crier " + c for c in commands)))
page = page.replace("@VERSION@", run("--version").strip())
if example:
    page = page.replace("@EXAMPLE@", literal(open(example, encoding="utf-8").read()))
if "@" in re.sub(r"[\w.+-]+@[\w.-]+", "", page.replace("```", "")) and re.search(r"@[A-Z]+@", page):
    sys.exit(f"{template}: a placeholder was left: {re.search(r'@[A-Z]+@', page).group(0)}")
with open(output, "w", encoding="utf-8") as f:
    f.write(page)
