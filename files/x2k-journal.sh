#!/bin/sh
# x2k-journal: the migration journal of xen2kvm, installed on each KVM host by the tool.
# One JSON object a line in STATE_DIR/journal/GUEST.jsonl; it survives reruns.
#
#   x2k-journal STATE_DIR GUEST STEP run CMD...   run CMD; record its start, end, exit code
#                                                 and, for rsync --stats, the bytes it moved
#   x2k-journal STATE_DIR GUEST STEP check CMD... run CMD, a comparison: as run, and record
#                                                 the differences it found (its output
#                                                 lines starting "X2K-DIFF "); exit 1 when
#                                                 it found any (CMD's own code otherwise)
#   x2k-journal STATE_DIR GUEST STEP mark [REDONE] record that STEP happened now; for
#                                                 fixups-done, with the fix-ups REDONE,
#                                                 and the copies' changes are forgotten
#   x2k-journal STATE_DIR GUEST - stop            stop the CMD a run left running for GUEST
#                                                 (its step then gets a "stopped" record)
#   x2k-journal STATE_DIR GUEST STEP marked       exit 0 if STEP is marked in the current
#                                                 attempt (after the last rolled-back mark)
#   x2k-journal STATE_DIR GUEST STEP watch SECONDS ADDRESS PORT
#                                                 return at once, leaving a watcher behind
#                                                 that marks STEP when ADDRESS:PORT first
#                                                 answers (TCP), within SECONDS; none when
#                                                 STEP is marked or a watcher is on it
#   x2k-journal STATE_DIR GUEST STEP wait [URI DOMAIN]
#                                                 wait while the watcher runs: exit 0 once
#                                                 STEP is marked, 3 if it ended without it;
#                                                 with libvirt's URI and the DOMAIN, 4 once
#                                                 virsh says it is shut off or crashed (it
#                                                 will not answer: its qemu died, or it
#                                                 powered off), checked every 10 s
#
# While CMD runs, STATE_DIR/running/GUEST holds "PID START STEP": CMD runs in a session of
# its own (its process group is PID, START its start time in /proc) so that what a run
# left running when its controller died (no signal reaches a command over SSH without a
# terminal) can be found and stopped, all of it, by the next run before it takes the lock.
set -u
[ $# -ge 4 ] || { echo "usage: x2k-journal STATE_DIR GUEST STEP run CMD... | check CMD... | mark | marked | watch SECONDS ADDRESS PORT | wait [URI DOMAIN] | stop" >&2; exit 2; }
dir=$1 guest=$2 step=$3 action=$4
shift 4
# Records are JSON written with printf: a name that would need escaping never gets in
# (xen2kvm.journal's vocabulary uses none of these characters).
case "$guest/$step" in
    *[!A-Za-z0-9:/_.@+-]*) echo "x2k-journal: not a guest and step name: $guest $step" >&2; exit 2 ;;
esac
journal="$dir/journal/$guest.jsonl"
running="$dir/running/$guest"
changes="$dir/changed/$guest"
mkdir -p "$dir/journal"

# The time now, in seconds to the nanosecond (one date: on an emulated host each program
# run costs about 0.1 s, so this tool runs as few as it can).
now() {
    date +%s.%N
}

# A record: EVENT, its extra fields (",\"rc\":0"), and its time (now() by default) kept to
# the millisecond.
record() {
    at=${3:-$(now)}
    printf '{"guest":"%s","step":"%s","event":"%s","time":%s%s}\n' \
        "$guest" "$step" "$1" "${at%??????}" "${2:-}" >> "$journal"
}

# A rollback starts a new attempt: its mark is a line of its own (written by record).
ROLLED_BACK='"step":"rolled-back","event":"mark"'

# Whether STEP is marked after the last rolled-back mark.
marked() {
    [ -f "$journal" ] || return 1
    awk -v want="\"step\":\"$step\",\"event\":\"mark\"" -v back="$ROLLED_BACK" '
        index($0, back) { found = 0 } index($0, want) { found = 1 } END { exit !found }
    ' "$journal"
}

# How many attempts the journal has ended (a watcher marks nothing for an older one).
attempts() {
    [ -f "$journal" ] || { echo 0; return; }
    grep -cF "$ROLLED_BACK" "$journal"
}

# When process $1 started (field 22 of /proc/PID/stat, after the command name, which may
# hold spaces and parentheses: the fields are counted from its last ") "); empty when no
# such process runs. Read by the shell itself (in a function's subshell: its "set --"
# stays there).
started() (
    stat=
    read -r stat 2>/dev/null < "/proc/$1/stat" || exit 0
    set -- ${stat##*) }
    [ $# -ge 20 ] && shift 19 && echo "$1"
)

# The recorded command's pid, if it still runs.
live() {
    [ -f "$running" ] || return 1
    read -r pid start what < "$running" || return 1
    [ -n "$start" ] && [ "$(started "$pid")" = "$start" ]
}

# Whether a watcher of STEP for the current attempt still runs (STATE_DIR/watching/GUEST
# holds "PID START STEP ATTEMPT"; one of an attempt a rollback ended marks nothing).
watching="$dir/watching/$guest"
watcher() {
    [ -f "$watching" ] || return 1
    read -r wpid wstart wstep wattempt < "$watching" || return 1
    [ -n "$wstart" ] && [ "$(started "$wpid")" = "$wstart" ] && [ "$wstep" = "$step" ] \
        && [ "$wattempt" = "$(attempts)" ]
}

case $action in
    marked)
        marked
        ;;
    watch)
        [ $# -eq 3 ] || { echo "usage: x2k-journal STATE_DIR GUEST STEP watch SECONDS ADDRESS PORT" >&2; exit 2; }
        seconds=$1 address=$2 port=$3
        case "$seconds/$port" in
            *[!0-9/]* | /* | */) echo "x2k-journal: not seconds and a port: $seconds $port" >&2; exit 2 ;;
        esac
        case "$address" in
            "" | *[!0-9A-Fa-f:.]*) echo "x2k-journal: not an IP address: $address" >&2; exit 2 ;;
        esac
        marked && exit 0
        watcher && exit 0
        mkdir -p "$dir/watching"
        attempt=$(attempts)
        # A session of its own, detached from this command's SSH channel: the run goes on
        # while the guest boots. It marks STEP the first time the port answers, unless a
        # rollback ended the attempt meanwhile; it gives up after SECONDS. A probe a half
        # second, each given up after 1 s: a connect to an address nobody answers ARP for
        # yet blocks for seconds, which would mark the answer late by as much.
        setsid sh -c '
            deadline=$(($(date +%s) + $1))
            until timeout 1 bash -c "exec 3<>/dev/tcp/\$0/\$1" "$2" "$3" 2>/dev/null; do
                [ "$(date +%s)" -ge "$deadline" ] && exit 0
                sleep 0.5
            done
            exec sh "$4" "$5" "$6" "$7" watched "$8"
        ' x2k-watch "$seconds" "$address" "$port" "$0" "$dir" "$guest" "$step" "$attempt" \
            < /dev/null > /dev/null 2>&1 &
        child=$!
        printf '%s %s %s %s\n' "$child" "$(started "$child")" "$step" "$attempt" > "$watching"
        ;;
    watched)
        # The watcher's last act (not for use by hand): the port answered.
        [ "$(attempts)" = "${1:-}" ] && ! marked && record mark
        exit 0
        ;;
    wait)
        case $# in
            0 | 2) ;;
            *) echo "usage: x2k-journal STATE_DIR GUEST STEP wait [URI DOMAIN]" >&2; exit 2 ;;
        esac
        waited=0
        while ! marked; do
            watcher || { marked && exit 0; exit 3; }
            if [ $# -eq 2 ] && [ $((waited % 10)) -eq 0 ]; then
                # Anything else virsh says (an error, a libvirtd restarting) is no answer.
                state=$(virsh -q -c "$1" domstate --reason "$2" 2>/dev/null) || state=
                case "$state" in
                    "shut off"* | crashed*)
                        marked && exit 0
                        echo "x2k-journal: $2 is $state" >&2
                        exit 4
                        ;;
                esac
            fi
            sleep 1
            waited=$((waited + 1))
        done
        ;;
    mark)
        # fixups-done: the fix-ups are current with every copy recorded so far (said
        # which were redone, words of xen2kvm's own: a-z, 0-9, "-" and ",").
        redone=${1:-}
        case "$redone" in
            *[!a-z0-9,-]*) echo "x2k-journal: not fix-up names: $redone" >&2; exit 2 ;;
        esac
        if [ "$step" = fixups-done ]; then
            record mark ",\"redone\":\"$redone\""
            rm -rf "$changes"
        else
            record mark
        fi
        ;;
    run | check)
        begun=$(now)
        record start "" "$begun"
        # A final copy, and the catch-up pass before it, keeps what it changed in the tree
        # (rsync's --out-format lines, "X2K-CHANGED ITEMIZE NAME") until the next
        # fixups-done: "STEP ITEMIZE NAME" lines in a .list, whose .open stays when this
        # tool is killed first (then anything may have changed). A presync copy's .open
        # always stays: all the fix-ups follow it.
        open= keep=
        case "$action/$step" in
            run/cutover:/* | run/rehome-cutover:/* | run/catchup:/* | run/rehome-catchup:/*)
                keep=1 ;;
        esac
        case "$action/$step" in
            run/*:/*) open="$changes/${begun%.*}${begun#*.}.open" ;;
        esac
        # The command's output, where xen2kvm status reads an open copy's progress.
        out="$dir/progress/$guest"
        mkdir -p "$dir/running" "$dir/progress" "$dir/summary" ${open:+"$changes"}
        [ -z "$open" ] || : > "$open"
        setsid "$@" > "$out" 2>&1 &
        child=$!
        printf '%s %s %s\n' "$child" "$(started "$child")" "$step" > "$running"
        trap 'kill -TERM "-$child" 2>/dev/null' HUP INT TERM
        rc=0
        wait "$child" || rc=$?
        while kill -0 "$child" 2>/dev/null; do
            wait "$child" && rc=0 || rc=$?  # a trapped signal ended the first wait
        done
        trap - HUP INT TERM
        ended=$(now)
        # One pass over what the command printed, without rsync's progress updates (one
        # \r-separated line that grows for as long as the copy runs: the last of each line
        # only): the bytes it moved (--stats), the differences a check found, the names a
        # final copy changed (into the .list), and the rest printed.
        # (in a directory of its own: beside the output, "GUEST.summary" could be another
        # guest's output file)
        summary="$dir/summary/$guest"
        list=${keep:+${open%.open}.list}
        : > "$summary"
        awk -v step="$step" -v list="$list" -v summary="$summary" '
            BEGIN { if (list != "") printf "" > list }
            { sub(/^.*\r/, "") }
            /^X2K-CHANGED / {
                if (list != "") {
                    code = substr($0, 13, 11); gsub(/ /, "", code)
                    print step " " code " " substr($0, 25) > list
                }
                next
            }
            /^Total bytes received: / { bytes = $4; gsub(/[,.]/, "", bytes) }
            /^X2K-DIFF / { differences++ }
            { print }
            END { print (bytes == "" ? "-" : bytes), differences + 0 > summary }
        ' "$out" && [ -n "$list" ] && rm -f "$open"
        bytes=- differences=0
        read -r bytes differences < "$summary" 2>/dev/null
        extra=",\"rc\":$rc"
        case "$bytes" in
            "" | *[!0-9]*) ;;
            *) extra="$extra,\"bytes\":$bytes" ;;
        esac
        if [ "$action" = check ]; then
            extra="$extra,\"differences\":$differences"
        else
            differences=0
        fi
        record end "$extra" "$ended"
        # The end is recorded before the record goes: x2k-journal stop waits for it.
        recorded=
        read -r recorded rest 2>/dev/null < "$running"
        [ "$recorded" = "$child" ] && rm -f "$running"
        # The output stays until the guest's next run: removing it here could remove the
        # next run's, started as soon as a stop saw this one's record go.
        if [ "$rc" -eq 0 ] && [ "$differences" -gt 0 ]; then
            echo "x2k-journal: $guest: $step: $differences differences" >&2
            exit 1
        fi
        exit "$rc"
        ;;
    stop)
        live || { rm -f "$running"; exit 0; }
        echo "x2k-journal: $guest: stopping $what (process group $pid), left running by a run that is gone" >&2
        kill -TERM "-$pid" 2>/dev/null
        tries=0
        while [ "$(started "$pid")" = "$start" ]; do
            tries=$((tries + 1))
            [ "$tries" -eq 100 ] && kill -KILL "-$pid" 2>/dev/null
            [ "$tries" -gt 200 ] && { echo "x2k-journal: $guest: $what (pid $pid) will not stop" >&2; exit 1; }
            sleep 0.1
        done
        # The run's own x2k-journal records the end and removes the record; give it time.
        tries=0
        while [ -f "$running" ] && [ "$tries" -lt 50 ]; do tries=$((tries + 1)); sleep 0.1; done
        rm -f "$running"
        step=$what
        record stopped ",\"pid\":$pid"
        ;;
    *)
        echo "x2k-journal: unknown action $action" >&2
        exit 2
        ;;
esac
