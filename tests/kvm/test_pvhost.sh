#!/bin/sh
# test_pvhost.sh: the pvhost command line: console on stdout, guest args, exit status, personality errors
pvhost=$1 image=$2
[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm (no KVM host here)"; exit 77; }
fail=0
out=$("$pvhost" run --personality native --memory 64M "$image" -- one two 4)
st=$?
[ "$st" = 4 ] || { echo "FAIL: exit status $st, want 4"; fail=1; }
case $out in
*"hello from the guest"*"cmdline: $image one two 4"*) ;;
*) echo "FAIL: console: $out"; fail=1 ;;
esac
err=$("$pvhost" run --personality xen "$image" 2>&1)
st=$?
[ "$st" = 2 ] || { echo "FAIL: --personality xen exit $st, want 2"; fail=1; }
case $err in
*"personality 'xen' is not available on this host (kvm, native are)"*) ;;
*) echo "FAIL: message: $err"; fail=1 ;;
esac
err=$("$pvhost" run --personality native /nonexistent 2>&1)
st=$?
[ "$st" = 1 ] || { echo "FAIL: missing image exit $st, want 1"; fail=1; }
case $err in
"pvhost: load guest failed: "*) ;;
*) echo "FAIL: message: $err"; fail=1 ;;
esac
[ $fail = 0 ] && echo "pvhost: ok"
exit $fail
