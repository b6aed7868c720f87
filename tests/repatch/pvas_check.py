#!/usr/bin/env python3
# pvas_check.py: check the sites and .pvsites records of a linked image against "# expect:" lines
"""Usage: pvas_check.py IMAGE [CASES.s]

IMAGE is a linked ELF (ld resolves the table's relocations, so every
record can be followed to its site).  For each record the checker verifies
that the site holds exactly the recorded original bytes (rip-relative
displacements adjusted), that the rest of the site is 0x90 padding, that
the length is the one site_kinds.def gives the kind and that reserved bytes
are zero.  With CASES.s, the records must match, in order, the
"# expect: KIND [FLAG...] reg=R aux=A w=W" comments of that file.
"""
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS_DEF = os.path.join(HERE, "..", "..", "repatch", "site_kinds.def")
FLAGS = {"code32": 0x01, "riprel": 0x02, "mem": 0x04, "imm": 0x08, "rep": 0x10, "manual": 0x20}


def load_kinds():
    kinds = []
    with open(KINDS_DEF) as f:
        for m in re.finditer(r'^PVSITE_KIND\(\s*\w+\s*,\s*"([^"]+)"\s*,\s*(\d+)\s*\)', f.read(), re.M):
            kinds.append((m.group(1), int(m.group(2))))
    return kinds


class Elf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        if d[:4] != b"\x7fELF":
            sys.exit("%s: not ELF" % path)
        self.is64 = d[4] == 2
        if self.is64:
            shoff, = struct.unpack_from("<Q", d, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3a)
            fmt = "<IIQQQQIIQQ"
        else:
            shoff, = struct.unpack_from("<I", d, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x2e)
            fmt = "<IIIIIIIIII"
        raw = [struct.unpack_from(fmt, d, shoff + i * shentsize) for i in range(shnum)]
        strtab = raw[shstrndx]
        self.sections = []
        for s in raw:
            name_off, typ, flags, addr, off, size = s[0], s[1], s[2], s[3], s[4], s[5]
            end = d.index(b"\0", strtab[4] + name_off)
            name = d[strtab[4] + name_off:end].decode()
            self.sections.append((name, typ, flags, addr, off, size))

    def section(self, name):
        for s in self.sections:
            if s[0] == name:
                return s
        return None

    def read(self, addr, n):
        for name, typ, flags, saddr, off, size in self.sections:
            if flags & 2 and typ != 8 and saddr <= addr and addr + n <= saddr + size:
                return self.data[off + addr - saddr:off + addr - saddr + n]
        raise ValueError("address 0x%x+%d is not in the image" % (addr, n))


def parse_expect(path):
    out = []
    for lineno, line in enumerate(open(path), 1):
        m = None if line.startswith("#") else re.search(r"#\s*expect:\s*(.*)$", line)
        if not m:
            continue
        words = m.group(1).split()
        e = {"line": lineno, "kind": words[0], "flags": 0}
        for w in words[1:]:
            if "=" in w:
                k, v = w.split("=", 1)
                e[k] = 0xFF if v == "none" else int(v, 0)
            else:
                e["flags"] |= FLAGS[w]
        out.append(e)
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kinds = load_kinds()
    elf = Elf(sys.argv[1])
    sec = elf.section(".pvsites")
    if not sec:
        sys.exit("no .pvsites section")
    _, _, _, base, off, size = sec
    table = elf.data[off:off + size]
    errors, recs, pos = [], [], 0
    while pos + 16 <= len(table):
        if table[pos:pos + 8] == b"\0" * 8:
            pos += 8
            continue
        magic, version, rec_size, count, reserved = struct.unpack_from("<IHHII", table, pos)
        if (magic, version, rec_size, reserved) != (0x54535650, 1, 32, 0):
            sys.exit("bad chunk header at +0x%x" % pos)
        pos += 16
        for _ in range(count):
            where, = struct.unpack_from("<q", table, pos)
            kind, ln, olen, flags, reg, aux, width, res = table[pos + 8:pos + 16]
            orig = table[pos + 16:pos + 32]
            site = base + pos + where
            if not elf.is64:
                site &= 0xFFFFFFFF
            recs.append((site, kind, ln, olen, flags, reg, aux, width, res, orig))
            pos += 32
    for i, (site, kind, ln, olen, flags, reg, aux, width, res, orig) in enumerate(recs):
        name = kinds[kind][0] if kind < len(kinds) else "?%d" % kind
        where = "site %d (%s at 0x%x)" % (i, name, site)
        if kind >= len(kinds) or ln != kinds[kind][1]:
            errors.append("%s: len %d, expected %s" % (where, ln, kinds[kind][1] if kind < len(kinds) else "?"))
        if res or flags & ~0x3F or not 0 < olen <= 15 or any(orig[olen:]):
            errors.append("%s: bad reserved/flags/orig_len/orig padding" % where)
        code = elf.read(site, ln)
        want = bytearray(orig[:olen])
        if flags & 0x02:  # the record's disp32 is relative to the copy in the table
            disp, = struct.unpack_from("<i", want, olen - 4)
            disp += base + record_addr(table, i) + 16 - site
            struct.pack_into("<i", want, olen - 4, disp)
        if bytes(code[:olen]) != bytes(want):
            errors.append("%s: site bytes %s != recorded %s" % (where, code[:olen].hex(), bytes(want).hex()))
        if code[olen:] != b"\x90" * (ln - olen):
            errors.append("%s: pad is not all 0x90: %s" % (where, code[olen:].hex()))
        fl = ",".join(k for k, v in FLAGS.items() if flags & v) or "-"
        print("%3d 0x%08x %-12s len=%2d orig=%2d %-20s reg=%-4s aux=%-3d w=%d  %s" %
              (i, site, name, ln, olen, fl, "none" if reg == 0xFF else reg, aux, width,
               bytes(orig[:olen]).hex()))
    if len(sys.argv) > 2:
        exp = parse_expect(sys.argv[2])
        if len(exp) != len(recs):
            errors.append("%d records, %d expected" % (len(recs), len(exp)))
        for i, (e, r) in enumerate(zip(exp, recs)):
            got = {"kind": kinds[r[1]][0] if r[1] < len(kinds) else "?", "flags": r[4],
                   "reg": r[5], "aux": r[6], "w": r[7]}
            for k in ("kind", "flags", "reg", "aux", "w"):
                if k in e and e[k] != got[k]:
                    errors.append("record %d (line %d): %s is %r, expected %r" % (i, e["line"], k, got[k], e[k]))
    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    print("%d records, %d errors" % (len(recs), len(errors)))
    return 1 if errors else 0


def record_addr(table, index):
    """Offset in the table of record `index` (walking the chunk headers)."""
    pos, n = 0, 0
    while pos + 16 <= len(table):
        if table[pos:pos + 8] == b"\0" * 8:
            pos += 8
            continue
        count, = struct.unpack_from("<I", table, pos + 8)
        pos += 16
        if index < n + count:
            return pos + 32 * (index - n)
        n += count
        pos += 32 * count
    raise IndexError(index)


if __name__ == "__main__":
    sys.exit(main())
