#!/bin/sh
# corpus.sh: build the kernel-like corpus with and without the annotator; audit, round-trip and refuse bad rewrites
# usage: corpus.sh PVCC PVSITES CORPUS_DIR KINDS_DEF
set -u
pvcc=$1 pvsites=$2 src=$3 kinds_def=$4
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

cflags="-O2 -ffreestanding -fno-pic -fno-pie -mcmodel=kernel -mno-red-zone -fno-stack-protector -I$src"
ldflags="-nostdlib -static -no-pie -Wl,-Ttext-segment=0xffffffff81000000 -Wl,-e,0 -Wl,--build-id=none"
incdir=$(dirname "$kinds_def")/include
build() { # build DIR CC...
	out=$1; shift
	mkdir -p "$w/$out"
	for f in "$src"/*.c "$src"/*.S; do
		"$@" $cflags -I"$incdir" -c "$f" -o "$w/$out/$(basename "$f").o" || return 1
	done
	gcc $ldflags -o "$w/$out.elf" "$w/$out"/*.o
}
build annotated "$pvcc" || { echo "FAIL: annotated build" >&2; exit 1; }
build plain gcc || { echo "FAIL: plain build" >&2; exit 1; }

# 1. The annotated build: every sensitive instruction is covered.
"$pvsites" audit "$w/annotated.elf" >"$w/audit.txt"
check '[ $? -eq 0 ]' "annotated audit exits 0: $(tail -1 "$w/audit.txt")"
check 'grep -q " 0 uncovered" "$w/audit.txt"' "annotated audit reports 0 uncovered"

# 2. The unannotated build: audit reports every one the annotator found.
"$pvsites" list --json "$w/annotated.elf" >"$w/list.json" || bad "list --json"
"$pvsites" audit --json "$w/plain.elf" >"$w/plain.json"
check '[ $? -eq 1 ]' "plain audit exits 1"
python3 - "$w/list.json" "$w/plain.json" "$kinds_def" <<'PY' || bad "site/audit/kind comparison"
import json, re, sys
sites = json.load(open(sys.argv[1]))["sites"]
audit = json.load(open(sys.argv[2]))
kinds = re.findall(r'^PVSITE_KIND\(\w+,\s*"([a-z0-9-]+)"', open(sys.argv[3]).read(), re.M)
auto = [s for s in sites if "manual" not in s["flags"]]
unc = audit["uncovered"]
n_unc = len(unc) if isinstance(unc, list) else unc
ok = True
if n_unc != len(auto):
    print(f"plain build: {n_unc} uncovered, annotated build has {len(auto)} automatic sites"); ok = False
missing = sorted(set(kinds) - {s["kind"] for s in sites})
if missing:
    print("kinds without a site in the corpus:", missing); ok = False
sys.exit(0 if ok else 1)
PY

# 3. Round trips are byte-exact for every site kind.
"$pvsites" patch --from native --to trap "$w/annotated.elf" -o "$w/trap.elf" || bad "native->trap"
check '! cmp -s "$w/annotated.elf" "$w/trap.elf"' "trap image differs from native"
"$pvsites" audit "$w/trap.elf" >/dev/null
check '[ $? -eq 0 ]' "trap image has no uncovered sensitive instruction"
"$pvsites" patch --from trap --to native "$w/trap.elf" -o "$w/back.elf" || bad "trap->native"
check 'cmp -s "$w/annotated.elf" "$w/back.elf"' "native -> trap -> native is bit-for-bit"
"$pvsites" patch --from native --to native "$w/annotated.elf" -o "$w/same.elf" || bad "native->native"
check 'cmp -s "$w/annotated.elf" "$w/same.elf"' "native -> native is the identity"

# 4. A table whose site bytes do not match is refused, and nothing is written.
"$pvsites" patch --from trap --to native "$w/annotated.elf" -o "$w/no.elf" 2>"$w/err.txt"
check '[ $? -eq 1 ]' "mismatch exits 1"
check '[ ! -e "$w/no.elf" ]' "mismatch writes no output"
check 'grep -q "site 0 at 0x" "$w/err.txt"' "mismatch names the site: $(cat "$w/err.txt")"

# 5. Hostile or wrong inputs get a clear error.
printf 'not an elf at all' >"$w/junk"
"$pvsites" list "$w/junk" 2>"$w/err.txt"
check '[ $? -eq 2 ] && grep -q "not an ELF file" "$w/err.txt"' "non-ELF refused: $(cat "$w/err.txt")"
"$pvsites" list "$w/plain.elf" 2>"$w/err.txt"
check '[ $? -eq 2 ] && grep -q "no .pvsites table" "$w/err.txt"' "no table: $(cat "$w/err.txt")"
off=$(python3 - "$w/annotated.elf" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
shoff, = struct.unpack_from("<Q", d, 0x28); shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3a)
def sh(i): return struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize)
stroff = sh(shstrndx)[4]
for i in range(shnum):
    s = sh(i); name = d[stroff + s[0]:d.index(b"\0", stroff + s[0])]
    if name == b".pvsites": print(s[4] + 16 + 8); break   # kind byte of the first record
PY
)
cp "$w/annotated.elf" "$w/corrupt.elf"
printf '\377' | dd of="$w/corrupt.elf" bs=1 seek="$off" conv=notrunc 2>/dev/null
"$pvsites" list "$w/corrupt.elf" 2>"$w/err.txt"
check '[ $? -eq 2 ] && grep -q "corrupt table" "$w/err.txt"' "corrupt table refused: $(cat "$w/err.txt")"
"$pvsites" patch --from native --to trap "$w/corrupt.elf" -o "$w/no.elf" 2>/dev/null
check '[ $? -ne 0 ] && [ ! -e "$w/no.elf" ]' "corrupt table is not patched"

echo "corpus: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
