# SPDX-License-Identifier: MIT
# Print every thread's frames as gdb unwinds them, one line each, for tests/e2e/test-stack.c:
#   @T <lwp>
#   @F <pc hex> <type> <function start hex or 0> <name or ??>
# Frame types are gdb's: NORMAL, INLINE, TAILCALL (a frame gdb rebuilds from DWARF call-site
# info for a tail call: it is not on the stack, so no stack unwinder can see it), SIGTRAMP, ...
# The function start tells aliases apart (several symbols at one address, e.g. clone3 and
# __clone3): for DWARF functions the start of the function's block, otherwise the minimal
# symbol's start from `info symbol`.
import re

import gdb

TYPES = {getattr(gdb, n): n[:-6] for n in dir(gdb) if n.endswith("_FRAME") and n != "NORMAL_FRAME"}
TYPES[gdb.NORMAL_FRAME] = "NORMAL"


def function_start(frame, newer):
    try:
        block = frame.block()
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            return block.start
    except RuntimeError:
        pass
    # gdb looks callers up at pc - 1 (the call, not the instruction after it).
    addr = frame.pc()
    if newer is not None and newer.type() not in (gdb.SIGTRAMP_FRAME,):
        addr -= 1
    try:
        out = gdb.execute("info symbol %#x" % addr, to_string=True)
    except gdb.error:
        return 0
    m = re.match(r"^\S+(?: \+ (\d+))? in ", out)
    if not m:
        return 0
    return addr - int(m.group(1) or 0)


def dump():
    inf = gdb.selected_inferior()
    for t in sorted(inf.threads(), key=lambda t: t.num):
        t.switch()
        print("@T %d" % t.ptid[1])
        frame, newer = gdb.newest_frame(), None
        while frame is not None:
            name = frame.name() or "??"
            kind = TYPES.get(frame.type(), str(frame.type()))
            print("@F %#x %s %#x %s" % (frame.pc(), kind, function_start(frame, newer), name))
            try:
                frame, newer = frame.older(), frame
            except gdb.error:
                break


dump()
