#!/usr/bin/env bash
# A tour: builds everything, runs word-stats over the 146 stories in a sandboxed worker, then
# shows each hostile example plugin being stopped while the host carries on, and the policy
# engine deciding about the permission examples.
set -euo pipefail
cd "$(dirname "$0")/.."
stories=${STORIES:-../shared/data/aesop-for-children.jsonl}

cargo build --release --workspace --quiet
host=target/release/plugin-host

$host inspect target/release/libword_stats.so
echo
$host run target/release/libword_stats.so analyze --input "$stories" --jsonl
echo
first_story=$(mktemp)
head -n 1 "$stories" > "$first_story"
for hostile in hostile_spin hostile_alloc hostile_panic hostile_segv; do
    echo "== $hostile"
    $host run "target/release/lib$hostile.so" analyze --input "$first_story" || echo "(exit $?: contained)"
done
rm -f "$first_story"
echo
echo "== the policy engine: greedy-exfil is denied with every reason"
$host validate target/release/libgreedy_exfil.so || echo "(exit $?: denied)"
echo
echo "== feed-fetcher: allowed at standard, denied at strict"
$host validate target/release/libfeed_fetcher.so --level standard
$host validate target/release/libfeed_fetcher.so --level strict || echo "(exit $?: denied)"
