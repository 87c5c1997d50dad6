"""The replay's scalar tracking against the running kernel's, instruction by instruction.

Random straight-line programs of ALU and conditional-jump instructions (64- and 32-bit, all
operators, immediates and registers, sign-extending moves, forward jumps) over unknown
inputs (bpf_get_prandom_u32() results, u32 fields of the XDP context) are loaded raw into
the kernel with the level-2 verifier log, which prints the registers each instruction
writes; the replay (`etran.analysis.replay.Explorer`) walks the same instructions and every
scalar the kernel prints is compared with the replay's: the 64- and 32-bit ranges and the
tnum. Used by tests/compiler/test_replay.py (a fixed sample) and, for larger samples, as

    .venv/bin/python tests/compiler/replay_bounds.py [N] [SEED]
"""
from __future__ import annotations

import ctypes
import os
import random
import re
import sys
from dataclasses import dataclass

from etran.analysis import replay
from etran.backend.disasm import Insn, instruction_text

SYS_BPF = 321                   # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_XDP = 6
U64, U32 = (1 << 64) - 1, (1 << 32) - 1

ALU_OPS = [0x00, 0x10, 0x20, 0x40, 0x50, 0xA0, 0x60, 0x70, 0xC0, 0x30, 0x90]
JMP_OPS = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0]
IMMS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 100, 255, 256, 0x7FFF, 0xFFFF, 0x7FFFFFFF,
        -1, -2, -8, -100, -0x8000, -0x80000000]


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Insn:
    return Insn(code, dst, src, off, imm)


def encode(ins: Insn) -> bytes:
    return bytes([ins.code, ins.dst | (ins.src << 4)]) + ins.off.to_bytes(2, "little", signed=True) \
        + ins.imm.to_bytes(4, "little", signed=True)


# ---------------------------------------------------------------- programs

def prologue() -> list[Insn]:
    """r7, r8: unknown 64-bit (bpf_get_prandom_u32 is RET_INTEGER); r9, r1: u32 context
    fields; the others: copies, constants and a masked value."""
    return [
        insn(0xBF, 6, 1),                   # r6 = r1 (ctx)
        insn(0x85, imm=7), insn(0xBF, 7, 0),  # r7 = prandom
        insn(0x85, imm=7), insn(0xBF, 8, 0),  # r8 = prandom
        insn(0x61, 9, 6, 12),               # r9 = ctx->ingress_ifindex (u32)
        insn(0x61, 1, 6, 16),               # r1 = ctx->rx_queue_index (u32)
        insn(0xBF, 2, 7), insn(0x57, 2, imm=0xFFFF),   # r2 = r7 & 0xffff
        insn(0xBF, 3, 8), insn(0xB7, 4, imm=-5), insn(0xBF, 5, 9),
        insn(0xBC, 6, 7),                   # w6 = w7
        insn(0xBF, 0, 8), insn(0x67, 0, imm=32), insn(0xC7, 0, imm=32),  # r0 = (s64)(s32)r8
    ]


def random_program(rng: random.Random, length: int = 24) -> list[Insn]:
    body: list[Insn] = []
    for n in range(length):
        kind = rng.random()
        d = rng.randrange(10)
        s = rng.randrange(10)
        imm = rng.choice(IMMS) if rng.random() < 0.8 else rng.randrange(-2**31, 2**31)
        cls = 0x07 if rng.random() < 0.55 else 0x04       # ALU64 / ALU
        if kind < 0.5:
            op = rng.choice(ALU_OPS)
            if op in (0x30, 0x90) and rng.random() < 0.7:
                op = 0x00
            if op in (0x60, 0x70, 0xC0):
                bits = 64 if cls == 0x07 else 32
                if rng.random() < 0.8:
                    body.append(insn(cls | op, d, imm=rng.randrange(bits)))
                else:
                    body.append(insn(cls | op | 0x08, d, s))
                continue
            if op in (0x30, 0x90) and imm == 0:
                imm = 3
            if rng.random() < 0.5:
                body.append(insn(cls | op, d, imm=imm))
            else:
                body.append(insn(cls | op | 0x08, d, s))
        elif kind < 0.62:
            r = rng.random()
            if r < 0.3:
                body.append(insn(cls | 0xB0 | 0x08, d, s))
            elif r < 0.5:
                body.append(insn(cls | 0xB0, d, imm=imm))
            elif r < 0.8:
                off = rng.choice([8, 16, 32] if cls == 0x07 else [8, 16])
                body.append(insn(cls | 0xB0 | 0x08, d, s, off))
            elif r < 0.9:
                body.append(insn(cls | 0x80, d))                     # neg
            else:
                width = rng.choice([16, 32, 64])
                if cls == 0x07:
                    body.append(insn(0xD7, d, imm=width))            # bswap
                else:
                    body.append(insn(0xD4 | rng.choice([0, 8]), d, imm=width))  # le/be
        else:
            jcls = 0x05 if rng.random() < 0.5 else 0x06              # JMP / JMP32
            op = rng.choice(JMP_OPS)
            left = length - n - 1
            off = rng.randrange(1, min(4, left) + 1) if left > 1 else 0
            if rng.random() < 0.6:
                body.append(insn(jcls | op, d, off=off, imm=imm))
            else:
                body.append(insn(jcls | op | 0x08, d, s, off))
    return prologue() + body + [insn(0xB7, 0, imm=0), insn(0x95)]


# ---------------------------------------------------------------- the kernel

class _Attr(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
                ("pad", ctypes.c_char * 64)]


_libc = ctypes.CDLL(None, use_errno=True)


def kernel_log(prog: list[Insn], log_size: int = 1 << 22) -> tuple[int, str]:
    """Load `prog` as XDP with the level-2 log: (the fd or -errno, the log)."""
    code = b"".join(encode(i) for i in prog)
    buf = ctypes.create_string_buffer(code)
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(log_size)
    attr = _Attr(BPF_PROG_TYPE_XDP, len(prog), ctypes.addressof(buf), ctypes.addressof(lic),
                 2, log_size, ctypes.addressof(log), 0, 0, b"bounds")
    fd = _libc.syscall(SYS_BPF, BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd >= 0:
        os.close(fd)
    else:
        fd = -ctypes.get_errno()
    return fd, log.value.decode(errors="replace")


@dataclass(frozen=True)
class Scalar:
    umin: int
    umax: int
    smin: int
    smax: int
    wumin: int
    wumax: int
    wsmin: int
    wsmax: int
    tv: int
    tm: int

    @classmethod
    def of(cls, r: replay.Reg) -> Scalar:
        return cls(r.umin, r.umax, r.smin, r.smax, r.wumin, r.wumax, r.wsmin, r.wsmax, r.tv, r.tm)

    def __str__(self) -> str:
        return (f"u64=[{self.umin:#x}, {self.umax:#x}] s64=[{self.smin}, {self.smax}] "
                f"u32=[{self.wumin:#x}, {self.wumax:#x}] s32=[{self.wsmin}, {self.wsmax}] "
                f"tnum=({self.tv:#x}; {self.tm:#x})")


def _split(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def parse_scalar(text: str) -> Scalar | None:
    """A scalar as the kernel prints it (print_reg_state), or None for another type."""
    text = text.removeprefix("P")
    if re.fullmatch(r"-?(0x[0-9a-f]+|\d+)", text):
        v = int(text, 0) & U64
        w = v & U32
        return Scalar(v, v, replay._s64(v), replay._s64(v), w, w, replay._s32(w), replay._s32(w), v, 0)
    m = re.fullmatch(r"scalar\((.*)\)", text)
    if not m:
        return None
    f = {"umin": 0, "umax": U64, "smin": -(1 << 63), "smax": (1 << 63) - 1, "umin32": 0,
         "umax32": U32, "smin32": -(1 << 31), "smax32": (1 << 31) - 1}
    tv, tm = 0, U64
    for item in _split(m.group(1)):
        names = item.split("=")
        value = names.pop()
        if names == ["var_off"] or value.startswith("("):
            v, mask = value.strip("()").split(";")
            tv, tm = int(v, 0), int(mask, 0)
            continue
        if names[0] in ("id", "ref_obj_id"):
            continue
        n = int(value, 0)
        for name in names:
            if name in f:
                if name.startswith("u"):
                    f[name] = n & U64
                else:
                    f[name] = replay._s32(n) if name.endswith("32") else replay._s64(n)
    return Scalar(f["umin"], f["umax"], f["smin"], f["smax"], f["umin32"], f["umax32"],
                  f["smin32"], f["smax32"], tv, tm)


_INSN = re.compile(r"^(\d+): \([0-9a-f]{2}\) [^;]*(?:; (.*))?$")
_STATE = re.compile(r"^(?:from \d+ to )?(\d+): (R\d.*)$")
_REG = re.compile(r"R(\d+)(?:_[rwD]+)?=(\S+)")


def _scalars(text: str) -> dict[int, Scalar | None]:
    return {int(r): parse_scalar(t) for r, t in _REG.findall(text)}


def kernel_events(log: str) -> list[tuple[str, int, dict[int, Scalar | None]]]:
    """("post", insn, the registers it wrote as printed) for every processed instruction and
    ("pre", insn, every register) where the log prints a whole state before one (a branch
    popped, a new path), in order."""
    events = []
    for line in log.splitlines():
        if line.startswith("mark_precise"):
            continue
        m = _INSN.match(line)
        if m:
            events.append(("post", int(m.group(1)), _scalars(m.group(2) or "")))
            continue
        m = _STATE.match(line)
        if m:
            i = int(m.group(1))
            if not line.startswith("from") and events and events[-1][:2] == ("post", i):
                # the state after a branch is_branch_taken() decided, printed with its index
                events.append(("again", i, _scalars(m.group(2))))
            else:
                events.append(("pre", i, _scalars(m.group(2))))
    return events


# ---------------------------------------------------------------- the replay

class _Recording(replay.Explorer):
    def __init__(self, lay: replay.Layout) -> None:
        super().__init__(lay)
        self.steps: list[tuple[int, list[replay.Reg], list[replay.Reg]]] = []

    def step(self, i: int, ins: Insn, st: replay.State) -> int | None:
        before = list(st.regs)
        nxt = super().step(i, ins, st)
        self.steps.append((i, before, list(st.regs)))
        return nxt


def replay_steps(prog: list[Insn]) -> list[tuple[int, list[replay.Reg], list[replay.Reg]]]:
    lay = replay.Layout(dict(enumerate(prog)), {}, {"bounds": 0}, len(prog))
    ex = _Recording(lay)
    ex.run(0)
    return ex.steps


@dataclass
class Difference:
    step: int
    insn: int
    text: str
    reg: int
    kernel: Scalar | None
    replay: Scalar | None
    before: str

    def __str__(self) -> str:
        return (f"step {self.step}, insn {self.insn} `{self.text}`, r{self.reg}:\n"
                f"  kernel {self.kernel}\n  replay {self.replay}\n  before: {self.before}")


def same(k: Scalar, r: replay.Reg) -> bool:
    """The kernel prints a constant's value alone (its ranges may be anything)."""
    if r.t != "scalar":
        return False
    if k.tm == 0 and k.umin == k.umax == k.tv:
        return r.tm == 0 and r.tv == k.tv
    return Scalar.of(r) == k


def compare(prog: list[Insn]) -> Difference | None:
    """The first register state (or visited instruction) where the replay parts from the
    kernel, or None. A program the kernel refuses is not compared."""
    fd, log = kernel_log(prog)
    if fd < 0:
        return None
    rs = replay_steps(prog)
    lay = replay.Layout(dict(enumerate(prog)), {}, {"bounds": 0}, len(prog))
    live = replay.static_analyses(lay)[0]
    live_out = {i: sum(live.get(t, 0) for t in replay._succs(lay, i)) for i in lay.insns}
    n = 0
    for kind, ki, kregs in kernel_events(log):
        if n >= len(rs):
            return Difference(n, ki, "", -1, None, None, "the replay stopped")
        if kind == "again":
            ri, pre, post = rs[n - 1]
            kind = "post"
        else:
            ri, pre, post = rs[n]
        if ki != ri:
            return Difference(n, ki, instruction_text(prog[ki]), -1, None, None,
                              f"the replay visits insn {ri}")
        regs = pre if kind == "pre" else post
        # the kernel may forget what it knew of a dead register (6.18's liveness): only
        # the live ones count
        mask = live[ki] if kind == "pre" else live_out[ki]
        for r, ks_ in kregs.items():
            if ks_ is None or r > 9 or not mask >> r & 1 or same(ks_, regs[r]):
                continue
            ins = prog[ki]
            before = " (the state before the instruction)" if kind == "pre" else ""
            for q in sorted({ins.dst, ins.src}):
                p = pre[q]
                before += f"\n    r{q} {Scalar.of(p) if p.t == 'scalar' else p.t}"
            got = Scalar.of(regs[r]) if regs[r].t == "scalar" else None
            return Difference(n, ki, instruction_text(ins), r, ks_, got, before)
        if kind == "post" and ki == rs[n][0] and regs is rs[n][2]:
            n += 1
    if n != len(rs):
        return Difference(n, -1, "", -1, None, None, f"kernel {n} steps, replay {len(rs)}")
    return None


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    show = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    rng = random.Random(seed)
    bad: list[tuple[int, Difference]] = []
    for k in range(n):
        prog = random_program(rng)
        diff = compare(prog)
        if diff is not None:
            bad.append((k, diff))
            if len(bad) <= show:
                print(f"program {k}: {diff}")
                for i, ins in enumerate(prog):
                    print(f"    {i}: {instruction_text(ins)}")
    for k, d in bad:
        print(f"  {k}: step {d.step} `{d.text}` r{d.reg} {d.before.splitlines()[0] if d.before else ''}")
    print(f"{n} programs, {len(bad)} differ")


if __name__ == "__main__":
    main()
