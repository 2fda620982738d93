#!/usr/bin/python3
"""layering.py - the layers of src/ checked from the sources, before any build.

Data flows down only:  core <- audio, image, nn, media <- avatar <- pipeline <- server <- cli.
A folder may include its own headers and those of any folder of a lower rank; an include of a
higher rank, or of a sibling of the same rank (audio, image, nn and media know nothing of each
other), is a back-edge. Likewise src/<folder>/*.cmake builds only lipsync_<folder> (cli: the
lipsync binary) and links only the libraries of lower ranks. A static library cannot refuse a
header from above it, so this script is what makes a back-edge fail the suite, and before any
compiler runs.

usage: layering.py SRC_DIR        exit 0 when clean, 1 naming every offending file:line
"""
import os
import re
import sys

# Rank of each folder under src/. A new folder must be given one here (and in the README).
RANKS = {
    "core": 0,
    "audio": 1, "image": 1, "nn": 1, "media": 1,
    "avatar": 2,
    "pipeline": 3,
    "server": 4,
    "cli": 5,
}
# Headers generated into the build tree, and the folder whose build rule generates them.
GENERATED = {"onnx": "nn"}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
LINKED = re.compile(r"\blipsync_(\w+)\b")
COMMAND = re.compile(r"\b(\w+)\s*\(([^)]*)\)")
TARGETS = {"add_library", "add_executable", "target_sources", "target_include_directories",
           "target_compile_definitions", "target_compile_options"}


def allowed(src, dst):
    return src == dst or RANKS[dst] < RANKS[src]


def why(src, dst):
    if RANKS[dst] == RANKS[src]:
        return "siblings of rank %d must not depend on each other" % RANKS[src]
    return "a lower layer (rank %d) must not depend on a higher one (rank %d)" % (
        RANKS[src], RANKS[dst])


def check_includes(src_dir, folder, errors):
    for root, _, files in os.walk(os.path.join(src_dir, folder)):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, os.path.dirname(src_dir))
            with open(path, encoding="utf-8", errors="replace") as f:
                for line_no, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    if "/" not in target:
                        continue  # a header beside the file: same folder
                    top = target.split("/", 1)[0]
                    dst = GENERATED.get(top, top)
                    if dst not in RANKS:
                        errors.append('%s:%d: includes "%s": "%s" is no layer of src/'
                                      % (rel, line_no, target, top))
                    elif not allowed(folder, dst):
                        errors.append('%s:%d: %s includes "%s" (%s): %s'
                                      % (rel, line_no, folder, target, dst, why(folder, dst)))


def check_cmake(src_dir, folder, errors):
    """src/<folder>/*.cmake builds only the folder's own target and links only lower layers."""
    own = "lipsync" if folder == "cli" else "lipsync_" + folder
    for name in sorted(os.listdir(os.path.join(src_dir, folder))):
        if not name.endswith(".cmake"):
            continue
        path = os.path.join(src_dir, folder, name)
        rel = os.path.relpath(path, os.path.dirname(src_dir))
        with open(path, encoding="utf-8") as f:
            text = "".join(re.sub(r"#.*", "", line) for line in f)
        for call in COMMAND.finditer(text):
            line_no = text.count("\n", 0, call.start()) + 1
            args = call.group(2).split()
            if call.group(1) != "target_link_libraries" and call.group(1) not in TARGETS:
                continue
            if args and args[0] != own:
                errors.append("%s:%d: %s(%s ...): the files of src/%s/ build %s only"
                              % (rel, line_no, call.group(1), args[0], folder, own))
            if call.group(1) != "target_link_libraries":
                continue
            for dst in LINKED.findall(" ".join(args[1:])):
                if dst not in RANKS:
                    errors.append("%s:%d: links lipsync_%s, no layer of src/" % (rel, line_no, dst))
                elif dst != folder and not allowed(folder, dst):
                    errors.append("%s:%d: %s links lipsync_%s: %s"
                                  % (rel, line_no, folder, dst, why(folder, dst)))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    src_dir = os.path.abspath(sys.argv[1])
    errors = []
    folders = sorted(d for d in os.listdir(src_dir) if os.path.isdir(os.path.join(src_dir, d)))
    for folder in folders:
        if folder not in RANKS:
            errors.append("src/%s/: folder has no rank in tests/core/layering.py" % folder)
            continue
        check_includes(src_dir, folder, errors)
        check_cmake(src_dir, folder, errors)
    for e in errors:
        print(e)
    if errors:
        print("layering: %d layering error(s) in %s" % (len(errors), src_dir))
        return 1
    print("layering: %d folders, no back-edge" % len(folders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
