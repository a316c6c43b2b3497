#!/bin/sh
# Journals written by the real files/x2k-journal.sh, copies by real local rsync.
set -eu
T=$(cd "$(dirname "$0")/../../.." && pwd)/files/x2k-journal.sh
W=${TMPDIR:-/tmp}/x2k-samples; rm -rf $W; mkdir -p $W/state $W/src/var $W/src/srv
head -c 20000000 /dev/urandom > $W/src/big; head -c 8000000 /dev/urandom > $W/src/var/log
R="rsync -aHAXx --numeric-ids --delete --stats --info=progress2 --bwlimit=10m"
j() { sh $T $W/state "$@" >/dev/null; }
copy() { g=$1 step=$2 from=$3; mkdir -p $W/dst/$g$from; j $g $step run $R $W/src$from $W/dst/$g$from; }
# web1: two presync passes, cutover, moved
copy web1 presync:/ / ; copy web1 presync:/var /var/
head -c 3000000 /dev/urandom > $W/src/var/log2
copy web1 presync:/ / ; copy web1 presync:/var /var/
j web1 downtime-start mark; sleep 1
copy web1 cutover:/ / ; copy web1 cutover:/var /var/
sleep 1; j web1 final-copy-done mark; sleep 2; j web1 kvm-answering mark; sleep 1; j web1 cutover-complete mark
# legacy1: presync, cutover, rolled back, presync again (a new attempt)
copy legacy1 presync:/ / ; j legacy1 downtime-start mark; sleep 1; j legacy1 rolled-back mark
copy legacy1 presync:/ /
# legacy2: rehome to xen2, complete
copy legacy2 rehome-presync:/ / ; j legacy2 downtime-start mark; copy legacy2 rehome-cutover:/ /
j legacy2 final-copy-done mark; sleep 1; j legacy2 guest-answering mark; j legacy2 rehome-complete mark
# mail1: presync done, in cutover, final copy of / running (copied mid-run)
copy mail1 presync:/ / ; j mail1 downtime-start mark; sleep 1
(j mail1 cutover:/ run $R $W/src/ $W/dst/mail1/ &) ; sleep 2.5
cp $W/state/journal/mail1.jsonl $W/mail1.midrun.jsonl; cp $W/state/progress/mail1 $W/mail1.progress
sleep 2
