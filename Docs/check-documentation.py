#!/usr/bin/env python3
"""Lists the public symbols of the Optim module that have no documentation comment.

Usage: check-documentation.py SYMBOL_GRAPH_DIR

SYMBOL_GRAPH_DIR holds the symbol graphs of Optim as `swift build -Xswiftc -emit-symbol-graph`
writes them (Docs/build-documentation.sh makes them, at the public access level): Optim.symbols.json
and, for extensions of other modules' types, Optim@<Module>.symbols.json. Prints one line per
undocumented symbol (kind, path, file and line) and exits with status 1 if there is any, 0 if
every public symbol has its own `///` comment.

What is not listed, and why:

- Members copied onto a type from a protocol extension: their identifiers contain
  `::SYNTHESIZED::`, one copy per conforming type (`!=` on every `Equatable` type, the default
  `validate(_:)` on every rule). They have no declaration of their own; DocC lists them as
  default implementations, and the declaration they copy is checked where it is written (or
  belongs to the standard library).
- Members the compiler writes itself: the symbol has no source location (`init(rawValue:)` of
  an enum with raw values, `init(from:)` and `encode(to:)` of a derived `Codable`
  conformance, `==` of a derived `Equatable` one). There is no line to put a comment on, and
  DocC shows the protocol requirement's documentation for them.
- Symbols whose documentation comment comes from another module (the symbol graph names that
  module in `docComment.module`): DocC treats such a comment as inherited and shows it as the
  requirement's documentation in the other module.
- Extension blocks (`swift.extension`, written with `-emit-extension-block-symbols`): DocC
  shows the extended type and its members, never a comment on the `extension` itself; the
  members are checked.

Everything else counts, whatever its kind: types, protocols and their requirements, members
that implement a requirement (a `description`, an `update` of a rule), enum cases, operators,
initializers and type aliases.
"""

import json
import pathlib
import sys

MODULE = "Optim"


def undocumented(graph_dir):
    files = sorted(graph_dir.glob(f"{MODULE}.symbols.json")) + sorted(graph_dir.glob(f"{MODULE}@*.symbols.json"))
    if not files:
        sys.exit(f"no symbol graph of {MODULE} in {graph_dir}")
    found = []
    count = 0
    for path in files:
        graph = json.loads(path.read_text())
        for symbol in graph["symbols"]:
            kind = symbol["kind"]["identifier"]
            precise = symbol["identifier"]["precise"]
            if "::SYNTHESIZED::" in precise or kind == "swift.extension":
                continue
            location = symbol.get("location")
            if location is None:
                continue
            count += 1
            comment = symbol.get("docComment")
            if comment is not None and comment.get("module", MODULE) != MODULE:
                continue
            if comment is not None and any(line["text"].strip() for line in comment.get("lines", [])):
                continue
            where = location["uri"].removeprefix("file://")
            found.append((where, location["position"]["line"] + 1, kind, ".".join(symbol["pathComponents"])))
    return count, sorted(set(found))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    count, missing = undocumented(pathlib.Path(sys.argv[1]))
    root = str(pathlib.Path(__file__).resolve().parent.parent) + "/"
    for where, line, kind, name in missing:
        print(f"{where.removeprefix(root)}:{line}: {kind.removeprefix('swift.')} {name} has no documentation comment")
    print(f"{len(missing)} of {count} public symbols of {MODULE} without a documentation comment")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
