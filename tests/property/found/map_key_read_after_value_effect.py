"""Kernel/interpreter mismatch: a struct key changed while the value argument is computed.

`flows.set(key, V(old=atomic_add(key.n, 5)))`: `key` is a reference (a struct on the stack),
evaluated first; the value's `atomic_add` then changes `key.n` from 1 to 6 before the helper
runs. The kernel's helper reads the key at the call, so the entry goes under key 6, as
Python's reference semantics say; the interpreter copies the key's bytes when it evaluates
the argument and inserts under key 1."""
from etran.dsl import *


class Key(Struct):
    n: i32


class V(Struct):
    old: i32


flows = HashMap(Key, V, max_entries=4)


@xdp
def rx(pkt: Packet) -> int:
    key = Key(n=1)
    flows.set(key, V(old=atomic_add(key.n, 5)))
    return XDP_PASS
