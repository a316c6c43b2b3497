#!/bin/sh
# x2k-baseline: what a guest looks like, in "## section" blocks of plain command output.
#
#   x2k-baseline          the pre-cutover baseline: first logs one tagged syslog line
#                         ("xen2kvm: pre-cutover baseline ...") and records it
#   x2k-baseline --no-mark
#                         the same picture without writing anything (the verify suite's
#                         "after", parsed by the same code as the baseline)
#
# xen2kvm runs it in each guest just before the Xen guest stops; the output travels with
# the final copy and is filed with the migration journal on the KVM host. POSIX sh, and
# tolerant of old tools (no ss: netstat; no systemd: the rc2.d links and init's children).
set -u
mark=yes
[ "${1:-}" = "--no-mark" ] && mark=no
have() { command -v "$1" >/dev/null 2>&1; }
section() { echo "## $1"; }

now=$(date +%s)
section time; echo "$now"
section hostname; hostname
section hostname-file; cat /etc/hostname 2>/dev/null
section kernel; uname -r; uname -m
section arch; dpkg --print-architecture 2>/dev/null || true
if [ -d /run/systemd/system ]; then init=systemd; else init=sysvinit; fi
section init; echo "$init"

if have ss; then
    section listen-ss; ss -ltnup 2>/dev/null | sed 1d
else
    section listen-netstat; netstat -ltnup 2>/dev/null | sed 1,2d
fi

# Daemons: the children of init (what a sysvinit guest runs), and systemd's own view.
section daemons; ps -e -o ppid= -o comm= | awk '$1 == 1 { print $2 }' | sort -u
if [ "$init" = systemd ]; then
    section services-running
    systemctl list-units --type=service --state=running --no-legend --plain 2>/dev/null \
        | awk '{ print $1 }'
    section services-enabled
    systemctl list-unit-files --type=service --state=enabled --no-legend 2>/dev/null \
        | awk '{ print $1 }'
else
    section services-enabled; ls /etc/rc2.d 2>/dev/null | sed -n 's/^S[0-9]*//p'
fi

section mounts
awk '$3 ~ /^(ext[234]|xfs|btrfs|jfs|reiserfs|vfat)$/ { print $2, $3, $4 }' /proc/mounts
section swaps; awk 'NR > 1 { print $1 }' /proc/swaps 2>/dev/null
section addresses; ip -o addr show 2>/dev/null
section routes; ip route show 2>/dev/null
section links; ip -o link show 2>/dev/null
section nameservers; sed -n 's/^nameserver[[:space:]]*//p' /etc/resolv.conf 2>/dev/null
section resolv-search
sed -n -e '/^search[[:space:]]/p' -e '/^domain[[:space:]]/p' /etc/resolv.conf 2>/dev/null

# Identity a migration can silently change: /etc/hosts (its entries, not its comments),
# the time zone (as tzdata names it and as the /etc/localtime link or copy says), and the
# sysctls set at boot: every key named in /etc/sysctl.conf and /etc/sysctl.d/*.conf with
# its value now, or the key alone when the running kernel has no such key.
section hosts; grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' /etc/hosts 2>/dev/null
section timezone
[ -f /etc/timezone ] && sed -n '1s/^/timezone /p' /etc/timezone
if [ -L /etc/localtime ]; then
    printf 'localtime link %s\n' "$(readlink /etc/localtime)"
elif [ -f /etc/localtime ]; then
    printf 'localtime copy %s\n' "$(cksum < /etc/localtime | awk '{ print $1 }')"
fi
section sysctl
sysctl=$(command -v sysctl 2>/dev/null || echo /sbin/sysctl)
for file in /etc/sysctl.conf /etc/sysctl.d/*.conf; do
    [ -f "$file" ] && cat "$file"
done | sed -n 's/^[[:space:]]*-\{0,1\}\([A-Za-z0-9_][A-Za-z0-9_.\/-]*\)[[:space:]]*=.*/\1/p' \
    | LC_ALL=C sort -u | while read -r key; do
        if value=$("$sysctl" -n "$key" 2>/dev/null); then
            printf '%s = %s\n' "$key" "$(printf '%s' "$value" | tr -s ' \t\n' '   ')"
        else
            printf '%s\n' "$key"
        fi
    done

exim=
for candidate in exim4 exim; do have "$candidate" && { exim=$candidate; break; }; done
if [ -n "$exim" ]; then
    section mail-queue; "$exim" -bpc 2>/dev/null
    section mail-frozen; "$exim" -bp 2>/dev/null | grep -c '\*\*\* frozen \*\*\*'
    # Queued for 10 minutes or more (exim -bp's first field is the age: 0m, 25m, 2h, 3d).
    section mail-queue-old
    "$exim" -bp 2>/dev/null | awk '$1 ~ /^[0-9]+[mhdw]$/ {
        unit = substr($1, length($1)); if (unit != "m" || $1 + 0 >= 10) old++ }
        END { print old + 0 }'
    section mail-route-root; "$exim" -bt root 2>&1 | sed 's/^[[:space:]]*//'
elif have postqueue; then
    section mail-queue; postqueue -p 2>/dev/null | grep -c '^[0-9A-F]'
fi

syslog=
for candidate in /var/log/syslog /var/log/messages; do
    [ -f "$candidate" ] && { syslog=$candidate; break; }
done
section logs; find /var/log -type f -printf '%s %T@ %p\n' 2>/dev/null | sort -k3
if [ -n "$syslog" ]; then
    section syslog; echo "$syslog"
    if [ "$mark" = yes ]; then
        line="xen2kvm: pre-cutover baseline of $(hostname) at $now"
        logger -t xen2kvm "pre-cutover baseline of $(hostname) at $now"
        found=
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            found=$(grep -F "$line" "$syslog" | tail -n 1)
            [ -n "$found" ] && break
            sleep 0.5
        done
        section syslog-marker; echo "$found"
    fi
    section syslog-last; tail -n 1 "$syslog"
fi
exit 0
