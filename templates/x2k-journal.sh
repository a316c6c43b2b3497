#!/bin/sh
# x2k-journal: the migration journal of xen2kvm, installed on each KVM host by the tool.
# One JSON object a line in STATE_DIR/journal/GUEST.jsonl; it survives reruns.
#
#   x2k-journal STATE_DIR GUEST STEP run CMD...   run CMD; record its start, end, exit code
#                                                 and, for rsync --stats, the bytes it moved
#   x2k-journal STATE_DIR GUEST STEP mark         record that STEP happened now
set -u
[ $# -ge 4 ] || { echo "usage: x2k-journal STATE_DIR GUEST STEP run CMD... | mark" >&2; exit 2; }
dir=$1 guest=$2 step=$3 action=$4
shift 4
journal="$dir/journal/$guest.jsonl"
mkdir -p "$dir/journal"

record() {
    printf '{"guest":"%s","step":"%s","event":"%s","time":%s%s}\n' \
        "$guest" "$step" "$1" "$(date +%s.%N | cut -c1-14)" "${2:-}" >> "$journal"
}

case $action in
    mark)
        record mark
        ;;
    run)
        record start
        out=$(mktemp)
        "$@" > "$out" 2>&1
        rc=$?
        cat "$out"
        bytes=$(sed -n 's/^Total bytes received: \([0-9,.]*\).*/\1/p' "$out" | tr -d ,. | tail -n 1)
        extra=",\"rc\":$rc"
        [ -n "$bytes" ] && extra="$extra,\"bytes\":$bytes"
        record end "$extra"
        rm -f "$out"
        exit "$rc"
        ;;
    *)
        echo "x2k-journal: unknown action $action" >&2
        exit 2
        ;;
esac
