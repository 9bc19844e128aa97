#!/usr/bin/env bash
# Publishes one scripts/bench.sh run into the docs: copies its table.md,
# SVG plots, machine.json and summary.json into docs/bench/ (replacing the
# previous run's), and refreshes the table in docs/benchmarks.md between
# its `bench-table` marker comments (headings demoted, plots linked from
# bench/). Refuses a --quick run unless NEO_BENCH_PUBLISH_QUICK=1 (for
# testing this script into a scratch directory).
#
#   scripts/bench-publish.sh [RESULTS_DIR]    # default bench-results/latest
#   NEO_BENCH_DOCS=DIR: publish into DIR instead of docs/ (DIR/benchmarks.md must exist)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$(cd "${1:-$root/bench-results/latest}" && pwd)"
docs="${NEO_BENCH_DOCS:-$root/docs}"
md="$docs/benchmarks.md"
begin='<!-- bench-table:begin (scripts/bench-publish.sh writes this block) -->'
end='<!-- bench-table:end -->'

if [ ! -f "$src/table.md" ] || [ ! -f "$src/summary.json" ]; then
    echo "bench-publish: $src has no table.md/summary.json (run scripts/bench.sh first)" >&2
    exit 1
fi
if grep -q '"mode":"quick' "$src/machine.json" && [ "${NEO_BENCH_PUBLISH_QUICK:-0}" != 1 ]; then
    echo "bench-publish: $src is a --quick run (plumbing only); run scripts/bench.sh all" >&2
    exit 1
fi
if ! grep -qF "$begin" "$md" || ! grep -qF "$end" "$md"; then
    echo "bench-publish: $md lacks the bench-table marker comments" >&2
    exit 1
fi

dest="$docs/bench"
mkdir -p "$dest"
rm -f "$dest"/*.svg "$dest/table.md" "$dest/machine.json" "$dest/summary.json"
cp "$src/table.md" "$src/machine.json" "$src/summary.json" "$dest/"
cp "$src"/*.svg "$dest/" 2>/dev/null || true

block="$(mktemp)"
trap 'rm -f "$block"' EXIT
{
    echo "$begin"
    echo
    sed -e 's/^#/###/' -e 's#](\./#](bench/#g' "$src/table.md"
    echo
    echo "$end"
} >"$block"
awk -v b="$begin" -v e="$end" -v f="$block" '
    $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip' "$md" >"$md.new"
mv "$md.new" "$md"
plots=("$dest"/*.svg)
echo "bench-publish: $(basename "$src") -> $dest (${#plots[@]} plots) and the table in $md"
