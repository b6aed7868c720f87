#!/bin/sh
# test_daemon.sh: pvmigrated and pvmigrate on a temporary socket: guests (boot, list, status, console, destroy), refusals, misbehaving clients, root only
#
# Usage: test_daemon.sh guests|misbehave|nonroot PVMIGRATED PVMIGRATE CTL_POKE GUEST_ELF WORKLOAD_REF PLAIN_ELF
# (PLAIN_ELF: an image without a .pvsites table, which pvhost's kvm personality must refuse)
set -u
mode=$1 pvmigrated=$2 pvmigrate=$3 poke=$4 guest=$5 ref=$6 plain=$7
. "$(dirname "$0")/lib.sh"

if [ "$mode" = guests ] && [ ! -c /dev/kvm ]; then
	echo "SKIP: no /dev/kvm (no KVM host here)"
	exit 77
fi
S=$T/control
start_daemon d --socket "$S"
C() { "$pvmigrate" --socket "$S" "$@"; }

case $mode in
guests)
	mode_bits=$(stat -c %a "$S")
	[ "$mode_bits" = 600 ] && ok "socket mode 0600" || fail "socket mode is $mode_bits"

	# a short run: boot, list, status, console equal to the reference
	out=$(C boot "$guest" seed=1 steps=3000) && ok "boot: $out" || fail "boot: $out"
	C list | grep -q '^dom1 .* running .* native ' && ok "list shows dom1 running" ||
		fail "list: $(C list)"
	C --json status dom1 | grep -q '"name":"dom1".*"state":"running".*"runner":"pvguest"' &&
		ok "status: running under pvguest" || fail "status: $(C --json status dom1)"
	want=$("$ref" seed=1 steps=3000)
	wait_state "$S" dom1 exited 60 || fail "dom1 did not end within 60 s"
	got=$(C console dom1 2>/dev/null | grep '^workload:')
	[ "$got" = "$want" ] && ok "console: $got" || fail "console: '$got', want '$want'"
	C --json status dom1 | grep -q '"state":"exited".*"exit_status":0' &&
		ok "status: exited with 0" || fail "status after the end: $(C --json status dom1)"

	# console --follow ends when the guest does, with everything in between
	C boot --name follow "$guest" seed=4 steps=500 >/dev/null || fail "boot follow"
	got=$(timeout 60 "$pvmigrate" --socket "$S" console --follow follow 2>"$T/follow.err" |
		grep '^workload:')
	want=$("$ref" seed=4 steps=500)
	[ "$got" = "$want" ] && grep -q "follow exited with status 0" "$T/follow.err" &&
		ok "console --follow: $got" || fail "console --follow: '$got' $(cat "$T/follow.err")"

	# destroy a guest that would run for hours
	C boot --name long --vcpus 2 --memory 64M "$guest" seed=2 steps=100000000 >/dev/null ||
		fail "boot long"
	wait_console "$S" long "tick=" 30 || fail "the long guest printed no progress"
	out=$(C destroy long) && [ "$out" = "long destroyed" ] && ok "destroy: $out" ||
		fail "destroy: $out"
	C status long >/dev/null 2>&1
	[ $? = 1 ] && ok "status of a destroyed guest: not found (exit 1)" ||
		fail "the destroyed guest is still listed"
	C status nosuch 2>&1 | grep -q "no guest named nosuch" && ok "unknown guest named" ||
		fail "unknown guest"

	# hypervisors that do not exist here: refused before anything starts
	before=$(C list | wc -l)
	for hv in l4 xen; do
		err=$(C boot --personality $hv "$guest" seed=1 steps=10 2>&1)
		rc=$?
		[ $rc = 4 ] && echo "$err" | grep -q "hypervisor '$hv' is not available.*available: native, kvm" &&
			ok "boot on $hv refused: $err" || fail "boot on $hv: rc $rc: $err"
	done
	[ "$(C list | wc -l)" = "$before" ] && ok "nothing was started" || fail "a guest appeared"

	# kvm goes to pvguest, whose refusal is the answer (and leaves no guest)
	err=$(C boot --personality kvm "$plain" 2>&1)
	rc=$?
	[ $rc = 1 ] && echo "$err" | grep -q "pvguest exited with status [0-9]*: kvm: .*no .pvsites table" &&
		ok "kvm boot of an image without sites: $err" || fail "kvm boot: rc $rc: $err"
	[ "$(C list | wc -l)" = "$before" ] && ok "the failed boot left no guest" ||
		fail "the failed boot left a guest"

	# ... and a migration to one fails before anything is frozen
	C boot --name mover --memory 64M "$guest" seed=5 steps=100000000 >/dev/null || fail "boot mover"
	wait_console "$S" mover "tick=" 30 || fail "mover printed no progress"
	err=$(C --from native --to l4 --dest 127.0.0.1:1 mover 2>&1)
	rc=$?
	[ $rc = 4 ] && echo "$err" | grep -q "hypervisor 'l4' is not available" &&
		[ "$(state "$S" mover)" = running ] && ok "migrate to l4 refused, guest runs: $err" ||
		fail "migrate to l4: rc $rc: $err"
	err=$(C --from native --to kvm --dest 127.0.0.1:1 mover 2>&1)
	rc=$?
	[ $rc = 1 ] && echo "$err" | grep -q "no TLS configured" &&
		[ "$(state "$S" mover)" = running ] && ok "native -> kvm without TLS: $err" ||
		fail "native -> kvm: rc $rc: $err"
	err=$(C --from kvm --to native --dest 127.0.0.1:1 mover 2>&1)
	[ $? = 2 ] && ok "wrong --from: $err" || fail "wrong --from: $err"
	err=$(C --from native --to native --dest 127.0.0.1:1 mover 2>&1)
	[ $? = 1 ] && echo "$err" | grep -q "no TLS configured" && ok "no TLS: $err" ||
		fail "no TLS: $err"
	C destroy mover >/dev/null || fail "destroy mover"

	# usage errors never reach the daemon
	C boot --vcpus 99 "$guest" >/dev/null 2>&1
	[ $? = 2 ] && ok "usage: exit 2" || fail "usage error exit status"
	"$pvmigrate" --socket "$T/none" list >/dev/null 2>&1
	[ $? = 3 ] && ok "no daemon: exit 3" || fail "unreachable exit status"
	;;
misbehave)
	for c in garbage huge over version header midframe stall flood; do
		out=$("$poke" "$S" $c)
		rc=$?
		last=$(echo "$out" | tail -n 1)
		[ $rc = 0 ] && ok "$c: $last" || fail "$c: $out"
		alive d || { fail "the daemon died after '$c'"; break; }
		C list >/dev/null && ok "list answered after '$c'" || fail "no list after '$c'"
	done
	;;
nonroot)
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: not root, so no other user to be (the check needs setpriv as root)"
		exit 77
	fi
	if ! command -v setpriv >/dev/null; then
		echo "SKIP: no setpriv to run the client as nobody"
		exit 77
	fi
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	if ! as_nobody test -x "$pvmigrate"; then
		echo "SKIP: user nobody cannot reach $pvmigrate (a directory on the way is closed)"
		exit 77
	fi
	chmod 755 "$T"
	as_nobody "$pvmigrate" --socket "$S" list >/dev/null 2>"$T/nobody.err"
	rc=$?
	[ $rc = 3 ] && ok "nobody cannot even connect to the 0600 socket: $(cat "$T/nobody.err")" ||
		fail "nobody on a 0600 socket: rc $rc: $(cat "$T/nobody.err")"
	# open the socket file: now the daemon's own check (SO_PEERCRED) must refuse
	chmod 666 "$S"
	as_nobody "$pvmigrate" --socket "$S" list >/dev/null 2>"$T/nobody.err"
	rc=$?
	[ $rc = 4 ] && grep -q "permission denied: uid 65534" "$T/nobody.err" &&
		ok "nobody refused by the daemon: $(cat "$T/nobody.err")" ||
		fail "nobody on an open socket: rc $rc: $(cat "$T/nobody.err")"
	C list >/dev/null && ok "root still served" || fail "root not served"
	;;
*)
	echo "usage: test_daemon.sh guests|misbehave|nonroot ..."
	exit 2
	;;
esac
alive d && ok "the daemon is still running" || fail "the daemon died"
finish
