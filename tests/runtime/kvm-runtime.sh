#!/bin/sh
# kvm-runtime.sh: the reference guest beneath the runtime: right result while parked over and over, every site kvm in its RAM, interrupts never inside a sequence
#
# usage: kvm-runtime.sh PVHOST PVSITES GUEST_ELF WORKLOAD_REF
#
# One run under --personality kvm with 2 vCPUs, `--park-test` pausing the
# guest every 40 ms (pvhost checks each vCPU's effective RIP is a safe
# point: outside the window and outside every runtime call sequence),
# `irqlog=1` (the guest records where kernel-mode interrupts landed) and
# `--dump-ram` (guest RAM at power-off).  Then, from outside:
#   - the workload line equals workload_ref's;
#   - pvhost reports "park: N rounds, all safe" with N >= 10;
#   - `pvsites list --ram` classifies every site from the guest's memory
#     and finds each one in the kvm personality (none half-written);
#   - every interrupted kernel RIP is a site's end: the runtime delivers
#     virtual interrupts to guest kernel code only at site boundaries
#     (never inside a sequence, never into the window).
# A native run's RAM must classify as native: the check can tell them apart.
set -u
pvhost=${1:?usage: kvm-runtime.sh PVHOST PVSITES GUEST_ELF WORKLOAD_REF}
pvsites=${2:?}
elf=${3:?}
ref=${4:?}
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "kvm-runtime: skipped: /dev/kvm is missing or not usable by this user"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "kvm-runtime: FAIL: $*"; fail=1; }

args="seed=7 steps=3000 mem=2M"
want=$("$ref" $args | grep '^workload: ')
timeout 600 "$pvhost" run --personality kvm --vcpus 2 --park-test 40 --dump-ram "$tmp/kvm.ram" \
	"$elf" -- $args irqlog=1 </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || bad "pvhost exit status $rc"
got=$(grep '^workload: ' "$tmp/out")
[ "$got" = "$want" ] && echo "kvm-runtime: ok: $got" || bad "got \"$got\", want \"$want\""
rounds=$(sed -n 's/^park: \([0-9]*\) rounds, all safe$/\1/p' "$tmp/err")
if [ -n "$rounds" ] && [ "$rounds" -ge 10 ]; then
	echo "kvm-runtime: ok: parked $rounds times, every vCPU at a safe point"
else
	bad "no \"park: N rounds, all safe\" with N >= 10"
	grep '^park:' "$tmp/err" | grep -v '(user)\|(kernel)\|(parked)' | tail -5
fi

"$pvsites" list --json --ram "$tmp/kvm.ram" "$elf" >"$tmp/sites.json"
st=$?
[ $st -eq 0 ] || bad "pvsites list --ram exit status $st"
grep '^irqlog: rip=' "$tmp/out" | sed 's/^irqlog: rip=//' >"$tmp/rips"
python3 - "$tmp/sites.json" "$tmp/rips" <<'PY' || fail=1
import json, sys
sites = json.load(open(sys.argv[1]))["sites"]
rips = [int(l, 16) for l in open(sys.argv[2]) if l.strip()]
ok = True
notkvm = [s for s in sites if "kvm" not in s["personality"].split("|")]
if notkvm:
    print("kvm-runtime: FAIL: %d sites not in kvm in the guest's RAM, first %s at %s"
          % (len(notkvm), notkvm[0]["kind"], notkvm[0]["addr"]))
    ok = False
else:
    print("kvm-runtime: ok: all %d sites are kvm in the guest's RAM" % len(sites))
spans = [(int(s["addr"], 16), int(s["addr"], 16) + s["len"], s["kind"]) for s in sites]
ends = {e for _, e, _ in spans}
at_end = 0
for r in rips:
    if 0x3fe00000 <= r < 0x40000000:
        print("kvm-runtime: FAIL: an interrupt returned into the runtime window at %#x" % r)
        ok = False
    inside = [k for a, e, k in spans if a < r < e]
    if inside:
        print("kvm-runtime: FAIL: an interrupt landed inside a %s site at %#x" % (inside[0], r))
        ok = False
    if r not in ends:
        print("kvm-runtime: FAIL: a kernel-mode interrupt landed at %#x, not at a site's end" % r)
        ok = False
    at_end += r in ends
if not rips:
    print("kvm-runtime: FAIL: no kernel-mode interrupt recorded (irqlog=1)")
    ok = False
print("kvm-runtime: %s: %d distinct kernel-mode interrupt RIPs, %d at a site end"
      % ("ok" if ok else "FAIL", len(rips), at_end))
sys.exit(0 if ok else 1)
PY

timeout 300 "$pvhost" run --personality native --dump-ram "$tmp/native.ram" "$elf" -- seed=1 steps=200 \
	</dev/null >"$tmp/nout" 2>&1 || bad "native run failed"
if "$pvsites" list --ram "$tmp/native.ram" "$elf" | grep -q '^personalities: native [0-9]*$'; then
	echo "kvm-runtime: ok: a native guest's RAM classifies as native"
else
	bad "a native guest's RAM does not classify as native only"
fi
[ $fail -eq 0 ] || { echo "--- pvhost stderr"; tail -20 "$tmp/err"; echo "--- guest"; tail -20 "$tmp/out"; }
exit $fail
