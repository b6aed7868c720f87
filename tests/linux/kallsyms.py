#!/usr/bin/env python3
# kallsyms.py: name the guest addresses pvhost's SIGUSR1 samples print, from the kallsyms tables inside a stock bzImage
"""
usage: kallsyms.py BZIMAGE [ADDR...]     name each ADDR (hex)
       kallsyms.py BZIMAGE < pvhost.log  histogram of 'pvhost: sample ... rip X' lines

Why: Debian ships /boot/System.map as a placeholder (the real one is in the
~860 MB -dbg package), but every kernel built with CONFIG_KALLSYMS carries
its own compressed symbol table in .rodata.  We unpack the vmlinux from
the bzImage (xz payload), find the tables by their shape and decode them.

Layout (scripts/kallsyms.c of 6.1 with KALLSYMS_BASE_RELATIVE and
ABSOLUTE_PERCPU, each label 8-byte aligned): kallsyms_offsets (s32 per
symbol), kallsyms_relative_base (u64), kallsyms_num_syms (u32),
kallsyms_names (per symbol: ULEB128 length, then token indices),
kallsyms_markers, [kallsyms_seqs_of_names], kallsyms_token_table (256
NUL-terminated strings), kallsyms_token_index (256 u16 offsets).
"""
import bisect
import collections
import lzma
import re
import struct
import sys


def vmlinux_from_bzimage(data):
    if data[0x202:0x206] != b"HdrS":
        return data  # already an ELF, presumably
    setup = ((data[0x1F1] or 4) + 1) * 512
    off, length = struct.unpack_from("<II", data, 0x248)
    payload = data[setup + off:setup + off + length - 4]
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)


def rodata(elf):
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    secs = [struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    strtab = secs[shstrndx][4]
    for name, _typ, _flags, addr, off, size in secs:
        end = elf.index(b"\0", strtab + name)
        if elf[strtab + name:end] == b".rodata":
            return addr, elf[off:off + size]
    raise SystemExit("kallsyms: no .rodata")


def find_tokens(ro):
    """token_index: 256 increasing u16 starting at 0, right after the table."""
    for p in range(0, len(ro) - 512, 8):
        if ro[p] or ro[p + 1] or not 2 <= ro[p + 2] <= 64 or ro[p + 3]:
            continue
        idx = struct.unpack_from("<256H", ro, p)
        if any(b <= a or b - a > 64 for a, b in zip(idx, idx[1:])):
            continue
        for t in range(p - idx[255] - 64, p - idx[255]):
            if t < 0 or t % 8:
                continue
            toks = [ro[t + i:ro.index(b"\0", t + i)] for i in idx]
            if all(toks) and all(t + idx[i] + len(toks[i]) + 1 == t + idx[i + 1]
                                 for i in range(255)):
                return [x.decode("latin-1") for x in toks]
    raise SystemExit("kallsyms: token table not found")


def symbols(elf):
    base_va, ro = rodata(elf)
    tokens = find_tokens(ro)
    # relative_base is _text (the lowest relative symbol) for x86-64.
    for m in re.finditer(re.escape(struct.pack("<Q", 0xFFFFFFFF81000000)), ro):
        p = m.start()
        if p % 8:
            continue
        n, = struct.unpack_from("<I", ro, p + 8)
        if not 10000 <= n <= 1000000:
            continue
        offs_at = p - ((4 * n + 7) & ~7)
        offs = struct.unpack_from("<%di" % n, ro, offs_at)
        q, syms = p + 16, []
        try:
            for i in range(n):
                ln = ro[q]
                q += 1
                if ln & 0x80:
                    ln = (ln & 0x7F) | ro[q] << 7
                    q += 1
                name = "".join(tokens[b] for b in ro[q:q + ln])
                q += ln
                o = offs[i]
                addr = o if o >= 0 else 0xFFFFFFFF81000000 - 1 - o
                syms.append((addr, name[1:], name[0]))
        except IndexError:
            continue
        if syms[0][1]:
            syms.sort()
            return syms
    raise SystemExit("kallsyms: tables not found")


def main():
    syms = symbols(vmlinux_from_bzimage(open(sys.argv[1], "rb").read()))
    addrs = [s[0] for s in syms]

    def name(a):
        i = bisect.bisect_right(addrs, a) - 1
        return "%s+%#x" % (syms[i][1], a - syms[i][0]) if i >= 0 else hex(a)

    if len(sys.argv) > 2:
        for a in sys.argv[2:]:
            print(a, name(int(a, 16)))
        return
    hist = collections.Counter()
    for line in sys.stdin:
        m = re.search(r"pvhost: sample .* rip (0x[0-9a-f]+)", line)
        if m:
            n = name(int(m.group(1), 16))
            hist[n.split("+")[0]] += 1
            print(line.split("pvhost: ")[1].split(" rsp")[0], n)
    total = sum(hist.values())
    for fn, c in hist.most_common(30):
        print("%5d %5.1f%% %s" % (c, 100.0 * c / total, fn))


if __name__ == "__main__":
    main()
