"""The types of the transport language, their layout in memory, and integer semantics.

Value types (what an expression produces): fixed-width integers, `bool`,
untyped integer constants (exact until they meet a typed operand), references
to structs (a struct value is always a place in memory: a map value, a packet
view, or zeroed stack storage), `Optional` references (map lookups, packet
views, queue pops) and `void`.

Storage types (what a struct field may be): the integers, `bool`, big-endian
integers (`be16/be32/be64`: network order in memory, host order in
expressions), nested structs and headers, fixed arrays, `SpinLock`, `Timer`.

Layouts: structs use natural alignment (like C), headers are packed; padding
is part of the size and always zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from etran.abi import MAP_TYPES

if TYPE_CHECKING:
    from etran.dsl.diagnostics import Span


@dataclass(frozen=True, slots=True)
class IntType:
    name: str
    bits: int
    signed: bool

    @property
    def size(self) -> int:
        return self.bits // 8

    @property
    def align(self) -> int:
        return self.size

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def fits(self, value: int) -> bool:
        return self.min <= value <= self.max

    def wrap(self, value: int) -> int:
        """Reduce an exact integer to this type, two's complement, as the hardware does."""
        v = value & ((1 << self.bits) - 1)
        if self.signed and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class BoolType:
    size: int = 1
    align: int = 1

    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True, slots=True)
class BeType:
    """A big-endian integer field: stored in network order, read as the unsigned host type."""

    name: str
    bits: int

    @property
    def size(self) -> int:
        return self.bits // 8

    @property
    def align(self) -> int:
        return self.size

    @property
    def value_type(self) -> IntType:
        return UNSIGNED[self.bits]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class UntypedInt:
    """The type of an integer constant before it meets a typed operand: exact, any size."""

    def __str__(self) -> str:
        return "integer constant"


@dataclass(frozen=True, slots=True)
class VoidType:
    def __str__(self) -> str:
        return "None"


@dataclass(frozen=True, slots=True)
class ErrorType:
    """The type of a variable whose definition had an error: uses are not reported again."""

    def __str__(self) -> str:
        return "<error>"


@dataclass(frozen=True, slots=True)
class SpinLockType:
    size: int = 4
    align: int = 4

    def __str__(self) -> str:
        return "SpinLock"


@dataclass(frozen=True, slots=True)
class TimerType:
    size: int = 16
    align: int = 8

    def __str__(self) -> str:
        return "Timer"


@dataclass(frozen=True, slots=True)
class ArrayType:
    elem: StorageType
    length: int

    @property
    def size(self) -> int:
        return self.elem.size * self.length

    @property
    def align(self) -> int:
        return self.elem.align

    def __str__(self) -> str:
        return f"Array[{self.elem}, {self.length}]"


@dataclass(slots=True)
class Field:
    name: str
    type: StorageType
    offset: int
    span: Span | None = None

    def __repr__(self) -> str:
        return f"Field({self.name}: {self.type} @{self.offset})"


@dataclass(eq=False, slots=True, weakref_slot=True)
class StructType:
    """A `Struct` (natural alignment) or `Header` (packed) declaration.

    Identity semantics: two declarations with the same fields are different
    types. Fields are filled in by the declaration pass (methods live in the checker).
    """

    name: str
    packed: bool
    module: str
    span: Span | None = None
    fields: list[Field] = field(default_factory=list)
    size: int = 0
    align: int = 1
    # Set when the struct holds a SpinLock or Timer: it can then only live in a map value.
    special_fields: tuple[str, ...] = ()

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def kind(self) -> str:
        return "Header" if self.packed else "Struct"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"StructType({self.name})"


@dataclass(frozen=True, slots=True)
class OptionalType:
    """`T | None`: what map lookups, packet views and queue pops return."""

    inner: StructType

    def __str__(self) -> str:
        return f"{self.inner} | None"


@dataclass(frozen=True, slots=True)
class PacketType:
    def __str__(self) -> str:
        return "Packet"


# DSL name: (kernel map type id, has key, kernel type name)
MAP_KINDS: dict[str, tuple[int, bool, str]] = {
    dsl: (MAP_TYPES[kernel], keyed, kernel) for dsl, kernel, keyed in (
        ("HashMap", "hash", True), ("ArrayMap", "array", True),
        ("PerCpuArray", "percpu_array", True), ("PerCpuHashMap", "percpu_hash", True),
        ("LruHashMap", "lru_hash", True), ("DevMap", "devmap", True),
        ("XskMap", "xskmap", True), ("Queue", "queue", False), ("RingBuf", "ringbuf", False))
}


@dataclass(eq=False, slots=True)
class MapType:
    """A map declared at module level: `conns = HashMap(FlowKey, Conn, max_entries=1024)`."""

    name: str
    kind: str
    key: ValueKeyType | None
    value: StructType | None
    max_entries: int
    span: Span | None = None

    @property
    def kernel_type(self) -> int:
        return MAP_KINDS[self.kind][0]

    @property
    def type_name(self) -> str:
        return MAP_KINDS[self.kind][2]

    @property
    def key_size(self) -> int:
        return self.key.size if self.key is not None else 0

    @property
    def value_size(self) -> int:
        if self.kind in ("XskMap", "DevMap"):
            return 4
        return self.value.size if self.value is not None else 0

    @property
    def is_array(self) -> bool:
        return self.kind in ("ArrayMap", "PerCpuArray")

    @property
    def is_percpu(self) -> bool:
        return self.kind in ("PerCpuArray", "PerCpuHashMap")

    def __str__(self) -> str:
        return f"{self.kind}({self.name})"


I8 = IntType("i8", 8, True)
I16 = IntType("i16", 16, True)
I32 = IntType("i32", 32, True)
I64 = IntType("i64", 64, True)
U8 = IntType("u8", 8, False)
U16 = IntType("u16", 16, False)
U32 = IntType("u32", 32, False)
U64 = IntType("u64", 64, False)
BOOL = BoolType()
BE16 = BeType("be16", 16)
BE32 = BeType("be32", 32)
BE64 = BeType("be64", 64)
UNTYPED = UntypedInt()
VOID = VoidType()
ERROR = ErrorType()
SPINLOCK = SpinLockType()
TIMER = TimerType()
PACKET = PacketType()

UNSIGNED = {8: U8, 16: U16, 32: U32, 64: U64}
SIGNED = {8: I8, 16: I16, 32: I32, 64: I64}
INT_TYPES = {t.name: t for t in (I8, I16, I32, I64, U8, U16, U32, U64)}
BE_TYPES = {t.name: t for t in (BE16, BE32, BE64)}

ScalarType = IntType | BoolType
ValueKeyType = IntType | BoolType | BeType | StructType | ArrayType
StorageType = IntType | BoolType | BeType | StructType | ArrayType | SpinLockType | TimerType
Type = (IntType | BoolType | BeType | UntypedInt | VoidType | SpinLockType | TimerType |
        ArrayType | StructType | OptionalType | PacketType | MapType | ErrorType)


def is_int(t: object) -> bool:
    return isinstance(t, IntType)


def value_type_of(storage: StorageType) -> Type:
    """The type an expression has when it reads a field of this storage type."""
    if isinstance(storage, BeType):
        return storage.value_type
    return storage


def common_int(a: IntType, b: IntType) -> IntType | None:
    """The type of `a op b` under implicit widening, or None when signedness differs."""
    if a.signed != b.signed:
        return None
    return a if a.bits >= b.bits else b


def can_widen(src: Type, dst: Type) -> bool:
    """Whether a value of `src` may be used where `dst` is expected without a cast."""
    if src == dst:
        return True
    if isinstance(src, IntType) and isinstance(dst, IntType):
        return src.signed == dst.signed and src.bits <= dst.bits
    return False


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def layout(struct: StructType, members: list[tuple[str, StorageType, Span | None]]) -> None:
    """Place `members` in `struct`: natural alignment for Structs, packed for Headers."""
    offset = 0
    align = 1
    fields: list[Field] = []
    for name, t, span in members:
        a = 1 if struct.packed else t.align
        offset = align_up(offset, a)
        fields.append(Field(name, t, offset, span))
        offset += t.size
        align = max(align, a)
    struct.fields = fields
    struct.align = align
    struct.size = align_up(offset, align) if offset else 0
    struct.special_fields = tuple(f.name for f in fields if holds_special(f.type))


def holds_special(t: StorageType) -> bool:
    """Whether a storage type contains a SpinLock or Timer (which only maps may hold)."""
    if isinstance(t, (SpinLockType, TimerType)):
        return True
    if isinstance(t, StructType):
        return bool(t.special_fields)
    if isinstance(t, ArrayType):
        return holds_special(t.elem)
    return False
