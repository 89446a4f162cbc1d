#!/usr/bin/env bash
# Builds the DocC documentation of the Optim module into .build-docs/Optim.doccarchive (a static
# site), after checking that every public symbol has a documentation comment. Any compiler
# warning in the module, and any DocC warning (a symbol link that does not resolve, a malformed
# directive, ...), fails the build.
#
#     Docs/build-documentation.sh            # check, then build the archive
#     Docs/build-documentation.sh --check    # only list the public symbols without documentation
#
# Why the toolchain's own `docc` and not swift-docc-plugin: the plugin would be a package
# dependency, and even behind an environment variable in Package.swift it would make the manifest
# depend on who evaluates it. Here Package.swift does not change at all: the library product
# keeps zero dependencies for the packages that use it, nothing is fetched to build the
# documentation, and the symbol graphs are the compiler's own output (the flags the plugin
# passes), for the Optim target alone.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=.build-docs
graphs="$PWD/$scratch/symbol-graphs"
archive="$scratch/Optim.doccarchive"
check_only=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# The toolchain's docc sits beside its swift.
swift_path=$(command -v swift)
docc="${DOCC:-$(dirname "$(readlink -f "$swift_path")")/docc}"
[ -x "$docc" ] || docc=$(command -v docc) || { echo "no docc beside $swift_path or on PATH" >&2; exit 1; }

# The symbol graphs are written with the module (the emit-module job). An up-to-date build
# runs nothing, so when they are missing the module file is removed to make that job run again.
build() {
    swift build --scratch-path "$scratch" --target Optim -Xswiftc -warnings-as-errors \
        -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$graphs" \
        -Xswiftc -symbol-graph-minimum-access-level -Xswiftc public \
        -Xswiftc -emit-extension-block-symbols
}
mkdir -p "$graphs"
build
if [ ! -s "$graphs/Optim.symbols.json" ]; then
    find "$scratch" -path '*/debug/Modules/Optim.swiftmodule' -not -path '*/checkouts/*' -exec rm -rf {} +
    build
fi

echo "== public symbols without documentation"
python3 Docs/check-documentation.py "$graphs"
[ "$check_only" -eq 1 ] && exit 0

echo "== docc convert"
rm -rf "$archive"
"$docc" convert Sources/Optim/Optim.docc \
    --additional-symbol-graph-dir "$graphs" \
    --fallback-display-name Optim --fallback-bundle-identifier swift-optim.Optim \
    --transform-for-static-hosting --warnings-as-errors \
    --output-dir "$archive"
echo "documentation: $archive (serve it: python3 -m http.server -d $archive, then open http://localhost:8000/documentation/optim)"
