#!/usr/bin/env python3
# test_runtime_host.py: pvhost --personality kvm against the TEST DOUBLE runtime: boot block, doorbell, console, exit status, failure, timer, net, parking, APs, RAM dump, refusals
#
# usage: test_runtime_host.py PVHOST RT_DOUBLE_ELF GUEST_ELF
# The double (rt_double.c) never enters the guest; the guest image is only
# loaded, so its .pvsites table and Multiboot info are what the boot block
# must describe.  Every case runs pvhost on the real /dev/kvm.
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

PVHOST, DOUBLE, GUEST = sys.argv[1:4]
WINDOW_BASE = 0x3FE00000
failures = []


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.pop("PVMIGRATE_RUNTIME", None)
    if env:
        e.update(env)
    try:
        p = subprocess.run([PVHOST, "run"] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=e, timeout=timeout)
    except subprocess.TimeoutExpired as t:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return -1, text(t.stdout), text(t.stderr) + f"\n(killed after {timeout} s)"
    return p.returncode, p.stdout, p.stderr


def case(name, ok, rc, out, err, why=""):
    if ok:
        print(f"runtime-host: {name}: ok")
        return
    failures.append(name)
    print(f"runtime-host: {name}: FAILED {why} (exit {rc})")
    print("--- stdout ---\n" + out[-3000:] + "--- stderr ---\n" + err[-3000:])


def kvm(*words, opts=(), runtime=True):
    args = ["--personality", "kvm"] + list(opts)
    if runtime:
        args += ["--runtime", DOUBLE]
    return run(args + [GUEST, "--"] + list(words))


def elf_section(path, want):
    """(addr, bytes) of a section of an ELF64 file."""
    with open(path, "rb") as f:
        d = f.read()
    shoff, = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    stroff = secs[shstrndx][4]
    for s in secs:
        name = d[stroff + s[0]:d.index(b"\0", stroff + s[0])].decode()
        if name == want:
            return s[3], d[s[4]:s[4] + s[5]]
    return None, None


# ---- refusals
rc, out, err = run(["--personality", "xen", GUEST])
case("unknown personality", rc == 2 and
     "personality 'xen' is not available on this host (kvm, native are)" in err, rc, out, err)
rc, out, err = kvm(opts=["--memory", "1024M"])
case("memory above the window", rc == 2 and "runtime window" in err, rc, out, err)
rc, out, err = kvm(opts=["--vcpus", "9"])
case("more vCPUs than per-CPU blocks", rc == 1 and "per-CPU blocks for 8" in err, rc, out, err)
rc, out, err = run(["--personality", "kvm", "--runtime", GUEST, GUEST])
case("runtime outside the window", rc == 1 and "outside the window's image area" in err,
     rc, out, err)

# ---- boot block, doorbell, console, power-off status (runtime named by the environment)
rc, out, err = run(["--personality", "kvm", "--stats", GUEST, "--", "double.nic=0"],
                   env={"PVMIGRATE_RUNTIME": DOUBLE})
case("boot block and console", rc == 0 and "rt-double: boot block ok" in out and
     "rt-double: powering off" in out and "pvhost: runtime: booted: 0 sites" in err and
     "pvhost: stats: exits=" in err and " doorbells=" in err, rc, out, err)
rc, out, err = kvm("double.exit=7")
case("power-off status", rc == 7 and "rt-double: powering off" in out, rc, out, err)

# ---- a failing boot: the runtime's own words, then the error, nonzero exit
rc, out, err = kvm("double.fail")
case("failed boot", rc == 70 and "rt-double: failing on request" in out and
     "runtime: boot failed: test double: failing on request" in err, rc, out, err)

# ---- the timer deadline, the upcall into sti;hlt, the clock pair
rc, out, err = kvm("double.timer", opts=["--stats"])
case("timer news by upcall", rc == 0 and "rt-double: timer news " in out and
     " upcalls=0 " not in err, rc, out, err)

# ---- frames both ways through the rings, with the host holding what the ring cannot take
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "net")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lsock.bind(path)
    lsock.listen(1)
    n = 100
    frames = [bytes([i % 256]) * 6 + b"\x52\x54\x00\x00\x00\x02" + b"\x88\xb5" +
              struct.pack("<I", i) + os.urandom(40 + (i * 37) % 1400) for i in range(n)]
    got = []

    def peer():
        lsock.settimeout(30)
        try:
            c, _ = lsock.accept()
            c.settimeout(30)
            for fr in frames:
                c.send(fr)
            while len(got) < n:
                got.append(c.recv(65536))
        except OSError as e:
            got.append(("error", str(e)))

    t = threading.Thread(target=peer)
    t.start()
    rc, out, err = kvm(f"double.net={n}", "double.nic=1",
                       opts=["--net", "socket:" + path, "--stats"])
    t.join(35)
    peak = 0
    for line in err.splitlines():
        if "host queue peak" in line:
            peak = int(line.split("host queue peak ")[1].split()[0])
    case("net echo through the rings", rc == 0 and got == frames and
         f"rt-double: echoed {n} frames, ring peak 32" in out and peak >= 1 and
         "0 too long" in err, rc, out, err,
         f"(got {len(got)} frames, {sum(a == b for a, b in zip(got, frames))} equal, peak {peak})")

# ---- parking: every pause must find vCPU 0 parked at a RIP outside the window
# long enough for 5 rounds on a loaded host (a round took up to 150 ms in CI)
rc, out, err = kvm("double.park=2000", opts=["--park-test", "10"])
rounds = [l for l in err.splitlines() if l.startswith("park: round ")]
parked = [l for l in rounds if l.endswith("(parked)")]
summary = [l for l in err.splitlines() if l.endswith("rounds, all safe")]
case("park test", rc == 0 and len(rounds) >= 5 and len(parked) >= 5 and summary and
     "rt-double: parked " in out, rc, out, err, f"({len(rounds)} rounds, {len(parked)} parked)")
rc, out, err = kvm("double.park=300", "double.badpark", opts=["--park-test", "25"])
case("park test catches an unsafe RIP", rc == 1 and "park: FAILED" in err and
     "inside the runtime window" in err, rc, out, err)

# ---- an AP started through the mailbox gets its per-CPU IDTR
rc, out, err = kvm("double.smp", opts=["--vcpus", "2"])
case("AP per-CPU IDTR", rc == 0 and "rt-double: AP 1 started, its IDTR base 0x3fed8000 "
     "limit 0xfff (ok)" in out, rc, out, err)

# ---- RAM at power-off: the retained table where the boot block said, the window reserved
with tempfile.TemporaryDirectory() as tmp:
    dump = os.path.join(tmp, "ram")
    rc, out, err = kvm(opts=["--dump-ram", dump, "--memory", "64M"])
    ok = rc == 0 and os.path.exists(dump) and os.path.getsize(dump) == 64 << 20
    why = ""
    if ok:
        with open(dump, "rb") as f:
            ram = f.read()
        addr, table = elf_section(GUEST, ".pvsites")
        ok = table is not None and ram[addr:addr + len(table)] == table
        mmap_len, mmap_addr = struct.unpack_from("<II", ram, 0x8000 + 44)
        entries = [struct.unpack_from("<IQQI", ram, mmap_addr + 24 * i)
                   for i in range(mmap_len // 24)]
        ok = ok and (20, WINDOW_BASE, 0x200000, 2) in entries and \
            all(not (b < WINDOW_BASE + 0x200000 and WINDOW_BASE < b + ln)
                for _, b, ln, ty in entries if ty == 1)
        why = f"(memory map {entries})"
    case("RAM dump at power-off", ok, rc, out, err, why)

if failures:
    print("runtime-host: FAILED: " + ", ".join(failures))
    sys.exit(1)
print("runtime-host: all cases passed")
