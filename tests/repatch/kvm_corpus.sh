#!/bin/sh
# kvm_corpus.sh: the kernel-like corpus through the kvm personality: byte-exact round trips, a corrupted site refused, out-of-reach calls refused
# usage: kvm_corpus.sh PVCC PVSITES CORPUS_DIR INCLUDE_DIR
set -u
pvcc=$1 pvsites=$2 src=$3 incdir=$4
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# kvm sites call RT_ENTRY_SITE (0x3fe00040) with a rel32: code must be linked
# within 2 GiB of it.  The low build is; the kernel-model build is not.
build() { # build NAME TEXT_SEGMENT CMODEL
	mkdir -p "$w/$1"
	for f in "$src"/*.c "$src"/*.S; do
		"$pvcc" -O2 -ffreestanding -fno-pic -fno-pie -mcmodel="$3" -mno-red-zone \
			-fno-stack-protector -I"$src" -I"$incdir" -c "$f" -o "$w/$1/$(basename "$f").o" ||
			return 1
	done
	gcc -nostdlib -static -no-pie -Wl,-Ttext-segment="$2" -Wl,-e,0 -Wl,--build-id=none \
		-o "$w/$1.elf" "$w/$1"/*.o
}
build low 0x400000 small || { echo "FAIL: low build" >&2; exit 1; }
build high 0xffffffff81000000 kernel || { echo "FAIL: kernel-model build" >&2; exit 1; }
n=$("$pvsites" list --json "$w/low.elf" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')

# 1. native -> kvm -> native is bit for bit; every site then holds kvm.
"$pvsites" patch --from native --to kvm "$w/low.elf" -o "$w/kvm.elf" || bad "native->kvm"
check '! cmp -s "$w/low.elf" "$w/kvm.elf"' "kvm image differs from native"
"$pvsites" list --json "$w/kvm.elf" >"$w/kvm.json"
check '[ $? -eq 0 ]' "list of the kvm image exits 0"
python3 - "$w/kvm.json" <<'PY' || bad "every site of the kvm image holds kvm"
import json, sys
d = json.load(open(sys.argv[1]))
bad = [s for s in d["sites"] if s["personality"] not in ("kvm", "native|kvm")]
for s in bad[:5]:
    print("site", s["index"], s["addr"], s["kind"], "holds", s["personality"])
sys.exit(1 if bad or not d["sites"] else 0)
PY
"$pvsites" audit "$w/kvm.elf" >/dev/null
check '[ $? -eq 0 ]' "kvm image has no uncovered sensitive instruction"
"$pvsites" patch --from kvm --to native "$w/kvm.elf" -o "$w/back.elf" || bad "kvm->native"
check 'cmp -s "$w/low.elf" "$w/back.elf"' "native -> kvm -> native is bit-for-bit ($n sites)"
"$pvsites" patch --from kvm --to trap "$w/kvm.elf" -o "$w/trap.elf" || bad "kvm->trap"
"$pvsites" patch --from trap --to native "$w/trap.elf" -o "$w/back2.elf" || bad "trap->native"
check 'cmp -s "$w/low.elf" "$w/back2.elf"' "native -> kvm -> trap -> native is bit-for-bit"

# 2. One corrupted kvm site: kvm -> native refuses, names it, writes nothing.
off=$(python3 - "$w/kvm.elf" "$w/kvm.json" <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read()
site = json.load(open(sys.argv[2]))["sites"][3]
addr = int(site["addr"], 16)
phoff, = struct.unpack_from("<Q", d, 0x20); phnum, = struct.unpack_from("<H", d, 0x38)
for i in range(phnum):
    t, f, o, va, pa, fs, ms, al = struct.unpack_from("<IIQQQQQQ", d, phoff + 56 * i)
    if t == 1 and va <= addr < va + fs:
        print(o + addr - va + site["len"] - 1); break
PY
)
cp "$w/kvm.elf" "$w/corrupt.elf"
printf '\001' | dd of="$w/corrupt.elf" bs=1 seek="$off" conv=notrunc 2>/dev/null
"$pvsites" patch --from kvm --to native "$w/corrupt.elf" -o "$w/no.elf" 2>"$w/err.txt"
check '[ $? -eq 1 ]' "corrupted site: kvm->native exits 1"
check '[ ! -e "$w/no.elf" ]' "corrupted site: nothing written"
check 'grep -q "site 3 at 0x" "$w/err.txt"' "the error names site 3: $(cat "$w/err.txt")"
"$pvsites" list "$w/corrupt.elf" >"$w/list.txt" 2>"$w/err.txt"
check '[ $? -eq 1 ] && grep -q "HALF-WRITTEN/FOREIGN" "$w/list.txt"' "list flags the corrupted site"
check 'grep -q "1 site matches no personality" "$w/err.txt"' "list says so: $(cat "$w/err.txt")"

# 3. Kernel-model code is out of rel32 reach of the window: refused, nothing written.
"$pvsites" patch --from native --to kvm "$w/high.elf" -o "$w/no.elf" 2>"$w/err.txt"
check '[ $? -eq 1 ] && [ ! -e "$w/no.elf" ]' "kernel-model image: native->kvm refused"
check 'grep -q "does not fit site .*(site [0-9]* at 0xffffffff81" "$w/err.txt"' "says why and names the site: $(cat "$w/err.txt")"

echo "kvm_corpus: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
