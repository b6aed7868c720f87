#!/bin/sh
# pvas_test.sh: assemble pvas_cases.s through the wrapper and check every site, record and warning
# usage: pvas_test.sh PVAS_BINARY   (the built repatch/as/as)
set -u
pvas=$1
here=$(cd "$(dirname "$0")" && pwd)
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# 1. Every "# expect:" line becomes exactly the record it describes.
"$pvas" --64 -o "$w/cases.o" "$here/pvas_cases.s" 2>"$w/err.txt" || bad "assembling pvas_cases.s: $(cat "$w/err.txt")"
ld -m elf_x86_64 -e 0 -o "$w/cases.elf" "$w/cases.o" || bad "linking pvas_cases.o"
python3 "$here/pvas_check.py" "$w/cases.elf" "$here/pvas_cases.s" >"$w/check.txt" || bad "pvas_check: $(tail -1 "$w/check.txt")"

# 2. Regions left alone are reported, with the user's file and line.
for pat in 'pvas_cases.s:[0-9]*: sensitive instruction inside .macro left unannotated: cli' \
	   'pvas_cases.s:[0-9]*: sensitive instruction inside .rept left unannotated: hlt' \
	   'pvas_cases.s:[0-9]*: 16-bit code left unannotated: cli' \
	   'pvas_cases.s:[0-9]*: 16-bit code left unannotated: sti'; do
	grep -q "$pat" "$w/err.txt" || bad "no warning matching: $pat"
done
grep -q 'pvsites_' "$w/err.txt" && bad "gas saw a .pvsites_* directive"

# 3. Input without sites assembles to the very same object as with plain as.
printf '\t.text\nf:\tmovl $1, %%eax\n\tint $0x80\n\tcltq\n\tret\n' >"$w/plain.s"
as --64 -o "$w/a.o" "$w/plain.s" && "$pvas" --64 -o "$w/b.o" "$w/plain.s" &&
	cmp -s "$w/a.o" "$w/b.o" || bad "a file without sites is not assembled identically"

# 4. Errors: unreadable input and a missing real assembler.
"$pvas" -o "$w/x.o" "$w/missing.s" 2>"$w/e1.txt" && bad "missing input accepted"
grep -q '^pvas: read .* failed: ' "$w/e1.txt" || bad "missing input message: $(cat "$w/e1.txt")"
PVAS_REAL_AS=$w/no-such-as "$pvas" -o "$w/x.o" "$w/plain.s" 2>"$w/e2.txt" && bad "missing real as accepted"
grep -q '^pvas: exec .* failed: ' "$w/e2.txt" || bad "missing real as message: $(cat "$w/e2.txt")"

[ $fails -eq 0 ] && echo "pvas: all checks passed ($(tail -1 "$w/check.txt"))"
exit $((fails != 0))
