"""The one module that makes foreign calls: libbpf 1.1 (``libbpf.so.1``) and a little libc.

Why a choke point: every ctypes signature, buffer and callback lives here, so the rest of the
runtime handles only Python values (ints, bytes, str). Each function converts its arguments,
calls exactly one C function, and turns a failure into ``OSError(errno, "<C function>: ...")``;
callers (``loader.py``) chain that into :class:`~etran.runtime.errors.BpfError` with a verb
phrase. Loading the library is lazy, so importing this module never fails; a missing
``libbpf.so.1`` surfaces as :class:`~etran.runtime.errors.NotSupported` on first use.

libbpf 1.x (strict mode is the only mode) returns ``-errno`` from its fd-level ``bpf_*``
functions and ``NULL`` plus ``errno`` from constructors; both are handled here.
Nothing here needs the raw bpf(2) syscall: libbpf 1.1 already has every command we use.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint32,
    c_ulong,
    c_void_p,
)
from typing import Any, NamedTuple

from etran.runtime.errors import NotSupported

LIBRARY_NAME = "libbpf.so.1"
_log = logging.getLogger(__name__)

# int (*libbpf_print_fn_t)(enum libbpf_print_level level, const char *fmt, va_list ap)
_PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
_SAMPLE_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)


class _OpenOpts(Structure):
    """struct bpf_object_open_opts as of libbpf 1.1 (80 bytes)."""

    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_unused", c_uint32),
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
    ]


class _TestRunOpts(Structure):
    """struct bpf_test_run_opts as of libbpf 1.1 (80 bytes; batch_size is the last field)."""

    _fields_ = [
        ("sz", c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),  # in: room in data_out; out: bytes written
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),  # out: average ns per repetition
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


class _LinkCreateOpts(Structure):
    """struct bpf_link_create_opts as of libbpf 1.1 (48 bytes: sz, flags, then padding and a
    32-byte union that XDP leaves zero)."""

    _fields_ = [
        ("sz", c_size_t),
        ("flags", c_uint32),
        ("_union", ctypes.c_uint8 * 36),
    ]


assert ctypes.sizeof(_OpenOpts) == 80 and ctypes.sizeof(_TestRunOpts) == 80
assert ctypes.sizeof(_LinkCreateOpts) == 48

_P = c_void_p  # opaque struct pointers (bpf_object*, bpf_program*, bpf_map*, ring_buffer*)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (c_void_p, [_PRINT_FN]),
    "libbpf_num_possible_cpus": (c_int, []),
    "bpf_object__open_mem": (_P, [c_void_p, c_size_t, POINTER(_OpenOpts)]),
    "bpf_object__load": (c_int, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_program__name": (c_char_p, [_P]),
    "bpf_program__section_name": (c_char_p, [_P]),
    "bpf_program__type": (c_int, [_P]),
    "bpf_program__fd": (c_int, [_P]),
    "bpf_program__set_log_level": (c_int, [_P, c_uint32]),
    "bpf_program__set_log_buf": (c_int, [_P, c_void_p, c_size_t]),
    "bpf_map__name": (c_char_p, [_P]),
    "bpf_map__fd": (c_int, [_P]),
    "bpf_map__type": (c_int, [_P]),
    "bpf_map__key_size": (c_uint32, [_P]),
    "bpf_map__value_size": (c_uint32, [_P]),
    "bpf_map__max_entries": (c_uint32, [_P]),
    "bpf_map__map_flags": (c_uint32, [_P]),
    "bpf_map__is_internal": (c_bool, [_P]),
    "bpf_map__reuse_fd": (c_int, [_P, c_int]),
    "bpf_map_create": (c_int, [c_int, c_char_p, c_uint32, c_uint32, c_uint32, c_void_p]),
    "bpf_map_lookup_elem_flags": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_lookup_and_delete_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, POINTER(c_uint32)]),
    "bpf_obj_pin": (c_int, [c_int, c_char_p]),
    "bpf_obj_get": (c_int, [c_char_p]),
    "bpf_prog_test_run_opts": (c_int, [c_int, POINTER(_TestRunOpts)]),
    "bpf_link_create": (c_int, [c_int, c_int, c_int, POINTER(_LinkCreateOpts)]),
    "bpf_link_detach": (c_int, [c_int]),
    "bpf_prog_get_fd_by_id": (c_int, [c_uint32]),
    "bpf_map_get_fd_by_id": (c_int, [c_uint32]),
    "ring_buffer__new": (_P, [c_int, _SAMPLE_FN, c_void_p, c_void_p]),
    "ring_buffer__consume": (c_int, [_P]),
    "ring_buffer__free": (None, [_P]),
}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None
# per thread doing a libbpf call: .messages, list[Message] | None; .buf, _print's buffer
_capture = threading.local()

LEVEL_WARN, LEVEL_INFO, LEVEL_DEBUG = 0, 1, 2  # enum libbpf_print_level


class Message(NamedTuple):
    level: int
    text: str


def _print(level: int, fmt: bytes | None, args: int | None) -> int:
    """libbpf's print hook: format the message and keep it instead of writing to stderr.
    The buffer is the calling thread's, made once: libbpf says a few dozen things per load,
    and a fresh 16 KiB buffer for each cost 0.6 ms of a 5 ms load."""
    assert _libc is not None
    buf = getattr(_capture, "buf", None)
    if buf is None:
        buf = _capture.buf = ctypes.create_string_buffer(16384)
    _libc.vsnprintf(buf, len(buf), fmt, args)  # a va_list is passed as a pointer on x86_64
    text = buf.value.decode(errors="replace").rstrip("\n")
    sink: list[Message] | None = getattr(_capture, "messages", None)
    if sink is not None:
        sink.append(Message(level, text))
    _log.debug("libbpf[%d]: %s", level, text)
    return 0


_print_callback = _PRINT_FN(_print)  # referenced for the process lifetime: libbpf keeps it


def _load() -> ctypes.CDLL:
    global _lib, _libc
    with _lock:
        if _lib is not None:
            return _lib
        try:
            lib = ctypes.CDLL(LIBRARY_NAME, use_errno=True)
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError as exc:
            raise NotSupported(LIBRARY_NAME, f"cannot load it ({exc}); install libbpf 1.1 or newer "
                               "(Debian/Ubuntu: apt-get install libbpf1)") from exc
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(lib, name)
            except AttributeError as exc:
                raise NotSupported(LIBRARY_NAME, f"it lacks {name}(); install libbpf 1.1 or "
                                   "newer") from exc
            fn.restype, fn.argtypes = restype, argtypes
        libc.vsnprintf.restype, libc.vsnprintf.argtypes = c_int, [c_char_p, c_size_t, c_char_p,
                                                                  c_void_p]
        libc.mount.restype = c_int
        libc.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_void_p]
        _libc = libc
        lib.libbpf_set_print(_print_callback)
        _lib = lib
        return lib


def _fail(function: str, err: int) -> OSError:
    return OSError(err, f"{function}: {os.strerror(err)}")


def _check(function: str, ret: int) -> int:
    """Turn libbpf's -errno convention into OSError; return non-negative results unchanged."""
    if ret < 0:
        raise _fail(function, -ret)
    return ret


def _buffer(data: bytes | None) -> bytes | ctypes.Array[ctypes.c_char] | None:
    """What a helper that only reads `data` is passed: the bytes object itself (ctypes hands
    its buffer over as the `void *`: the kernel copies from it and never writes) instead of
    a copy in a new ctypes buffer, which costs as much again on every map operation."""
    if data is None or type(data) is bytes:
        return data
    return ctypes.create_string_buffer(bytes(data), len(data))


def _address(data: bytes | None) -> tuple[int | None, object]:
    """The address of `data`'s own buffer, and what keeps it alive until the call is made."""
    if data is None:
        return None, None
    keep = ctypes.c_char_p(data)
    return ctypes.cast(keep, ctypes.c_void_p).value, keep


@contextlib.contextmanager
def capture_messages() -> Iterator[list[Message]]:
    """Collect what libbpf prints (on this thread) during the ``with`` block."""
    _load()
    previous = getattr(_capture, "messages", None)
    messages: list[Message] = []
    _capture.messages = messages
    try:
        yield messages
    finally:
        _capture.messages = previous


# --------------------------------------------------------------------------- objects and programs

class LogBuffer:
    """A C buffer the kernel writes a verifier log into."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buf = ctypes.create_string_buffer(size)

    def address(self) -> int:
        return ctypes.addressof(self._buf)

    def text(self) -> str:
        return self._buf.value.decode(errors="replace")

    def is_full(self) -> bool:
        """True when the kernel filled the buffer (the log may have been truncated)."""
        return len(self._buf.value) >= self.size - 2


class ObjectHandle:
    """A ``struct bpf_object *`` plus the memory libbpf borrows from us until close."""

    def __init__(self, pointer: int, keep: list[object]) -> None:
        self.pointer = pointer
        self._keep = keep

    def keep(self, thing: object) -> None:
        self._keep.append(thing)


def open_object(elf: bytes, name: str) -> ObjectHandle:
    lib = _load()
    data = ctypes.create_string_buffer(elf, len(elf))  # libbpf reads it until load
    object_name = name.encode()
    opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), object_name=object_name)
    pointer = lib.bpf_object__open_mem(data, len(elf), ctypes.byref(opts))
    if not pointer:
        raise _fail("bpf_object__open_mem", ctypes.get_errno() or 22)
    return ObjectHandle(pointer, [data, object_name, opts])


def object_load(obj: ObjectHandle) -> int:
    """bpf_object__load: 0 or -errno (not raised: the caller inspects the verifier logs)."""
    return int(_load().bpf_object__load(obj.pointer))


def object_close(obj: ObjectHandle) -> None:
    """Free the object and close every fd libbpf opened for it (maps, programs, BTF)."""
    if obj.pointer:
        _load().bpf_object__close(obj.pointer)
        obj.pointer = 0


def object_programs(obj: ObjectHandle) -> list[int]:
    lib, out, prog = _load(), [], None
    while prog := lib.bpf_object__next_program(obj.pointer, prog):
        out.append(prog)
    return out


def object_maps(obj: ObjectHandle) -> list[int]:
    lib, out, map_ = _load(), [], None
    while map_ := lib.bpf_object__next_map(obj.pointer, map_):
        out.append(map_)
    return out


def program_name(prog: int) -> str:
    return bytes(_load().bpf_program__name(prog) or b"").decode()


def program_section(prog: int) -> str:
    return bytes(_load().bpf_program__section_name(prog) or b"").decode()


def program_type(prog: int) -> int:
    return int(_load().bpf_program__type(prog))


def program_fd(prog: int) -> int:
    return int(_load().bpf_program__fd(prog))


def program_set_log(prog: int, buf: LogBuffer, level: int) -> None:
    lib = _load()
    _check("bpf_program__set_log_buf", lib.bpf_program__set_log_buf(prog, buf.address(), buf.size))
    _check("bpf_program__set_log_level", lib.bpf_program__set_log_level(prog, level))


def map_reuse_fd(map_: int, fd: int) -> None:
    """Before the object loads: `map_` is the existing map `fd` instead of a new one."""
    _check("bpf_map__reuse_fd", _load().bpf_map__reuse_fd(map_, fd))


class MapDescription(NamedTuple):
    name: str
    fd: int
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    internal: bool


def describe_map(map_: int) -> MapDescription:
    lib = _load()
    return MapDescription(
        bytes(lib.bpf_map__name(map_) or b"").decode(), int(lib.bpf_map__fd(map_)),
        int(lib.bpf_map__type(map_)), int(lib.bpf_map__key_size(map_)),
        int(lib.bpf_map__value_size(map_)), int(lib.bpf_map__max_entries(map_)),
        int(lib.bpf_map__map_flags(map_)), bool(lib.bpf_map__is_internal(map_)))


# --------------------------------------------------------------------------- fd-level commands

def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, name: str) -> int:
    ret = _load().bpf_map_create(map_type, name.encode(), key_size, value_size, max_entries, None)
    return _check("bpf_map_create", ret)


def map_lookup(fd: int, key: bytes | None, value_size: int, flags: int = 0) -> bytes | None:
    """The value, or None when the key is absent (ENOENT)."""
    value = ctypes.create_string_buffer(max(value_size, 1))
    ret = _load().bpf_map_lookup_elem_flags(fd, _buffer(key), value, flags)
    if ret == -2:
        return None
    _check("bpf_map_lookup_elem", ret)
    return value.raw[:value_size]


def map_update(fd: int, key: bytes | None, value: bytes, flags: int = 0) -> None:
    _check("bpf_map_update_elem",
           _load().bpf_map_update_elem(fd, _buffer(key), _buffer(value), flags))


def map_delete(fd: int, key: bytes) -> bool:
    """False when the key was absent (ENOENT)."""
    ret = _load().bpf_map_delete_elem(fd, _buffer(key))
    if ret == -2:
        return False
    _check("bpf_map_delete_elem", ret)
    return True


def map_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after ``key`` (the first key when ``key`` is None), or None at the end."""
    out = ctypes.create_string_buffer(max(key_size, 1))
    ret = _load().bpf_map_get_next_key(fd, _buffer(key), out)
    if ret == -2:
        return None
    _check("bpf_map_get_next_key", ret)
    return out.raw[:key_size]


def map_lookup_and_delete(fd: int, key: bytes | None, value_size: int) -> bytes | None:
    """Pop for QUEUE/STACK maps (``key`` None); None when empty (ENOENT)."""
    value = ctypes.create_string_buffer(max(value_size, 1))
    ret = _load().bpf_map_lookup_and_delete_elem(fd, _buffer(key), value)
    if ret == -2:
        return None
    _check("bpf_map_lookup_and_delete_elem", ret)
    return value.raw[:value_size]


def obj_get_info(fd: int, size: int = 256) -> bytes:
    """Raw ``struct bpf_prog_info`` / ``bpf_map_info`` (zero-filled past what the kernel knows)."""
    info = ctypes.create_string_buffer(size)
    length = c_uint32(size)
    _check("bpf_obj_get_info_by_fd",
           _load().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(length)))
    return info.raw


def obj_pin(fd: int, path: str) -> None:
    _check("bpf_obj_pin", _load().bpf_obj_pin(fd, os.fsencode(path)))


def obj_get(path: str) -> int:
    return _check("bpf_obj_get", _load().bpf_obj_get(os.fsencode(path)))


def link_create(prog_fd: int, target: int, attach_type: int, flags: int = 0) -> int:
    """BPF_LINK_CREATE: a link fd that keeps ``prog_fd`` attached to ``target`` (an ifindex for
    XDP) until the fd and every pin of it are gone."""
    opts = _LinkCreateOpts(sz=ctypes.sizeof(_LinkCreateOpts), flags=flags)
    return _check("bpf_link_create",
                  _load().bpf_link_create(prog_fd, target, attach_type, ctypes.byref(opts)))


def link_detach(link_fd: int) -> None:
    """BPF_LINK_DETACH: detach now, even if other fds or pins still hold the link."""
    _check("bpf_link_detach", _load().bpf_link_detach(link_fd))


def prog_get_fd_by_id(prog_id: int) -> int:
    return _check("bpf_prog_get_fd_by_id", _load().bpf_prog_get_fd_by_id(prog_id))


def map_get_fd_by_id(map_id: int) -> int:
    return _check("bpf_map_get_fd_by_id", _load().bpf_map_get_fd_by_id(map_id))


def num_possible_cpus() -> int:
    return _check("libbpf_num_possible_cpus", _load().libbpf_num_possible_cpus())


def mount_bpffs(path: str) -> None:
    _load()
    assert _libc is not None
    if _libc.mount(b"bpf", os.fsencode(path), b"bpf", 0, None) != 0:
        raise _fail("mount", ctypes.get_errno())


class TestRunOutput(NamedTuple):
    retval: int
    duration_ns: int
    data: bytes
    ctx: bytes


def prog_test_run(fd: int, data: bytes, data_out_size: int, ctx: bytes | None,
                  ctx_out_size: int, repeat: int, flags: int, cpu: int,
                  batch_size: int) -> TestRunOutput:
    """BPF_PROG_TEST_RUN; ``data``/``ctx`` are truncated to the sizes the kernel reports."""
    # the kernel only reads the inputs: their own buffers, no copies (as `_buffer`)
    data_in, ctx_in = _address(bytes(data)), _address(None if ctx is None else bytes(ctx))
    data_out = ctypes.create_string_buffer(data_out_size) if data_out_size else None
    ctx_out = ctypes.create_string_buffer(ctx_out_size) if ctx_out_size else None
    opts = _TestRunOpts(
        sz=ctypes.sizeof(_TestRunOpts), data_size_in=len(data), data_size_out=data_out_size,
        ctx_size_in=len(ctx or b""), ctx_size_out=ctx_out_size, repeat=repeat, flags=flags,
        cpu=cpu, batch_size=batch_size)
    opts.data_in = data_in[0]
    opts.data_out = ctypes.addressof(data_out) if data_out is not None else None
    opts.ctx_in = ctx_in[0]
    opts.ctx_out = ctypes.addressof(ctx_out) if ctx_out is not None else None
    _check("bpf_prog_test_run_opts", _load().bpf_prog_test_run_opts(fd, ctypes.byref(opts)))
    return TestRunOutput(
        int(opts.retval), int(opts.duration),
        data_out.raw[:opts.data_size_out] if data_out is not None else b"",
        ctx_out.raw[:opts.ctx_size_out] if ctx_out is not None else b"")


class RingBuffer:
    """libbpf's BPF_MAP_TYPE_RINGBUF consumer (it mmaps the ring and owns an epoll fd)."""

    def __init__(self, map_fd: int) -> None:
        lib = _load()
        self._records: list[bytes] = []
        self._callback = _SAMPLE_FN(self._on_sample)  # referenced for the ring's lifetime
        pointer = lib.ring_buffer__new(map_fd, self._callback, None, None)
        if not pointer:
            raise _fail("ring_buffer__new", ctypes.get_errno() or 22)
        self._pointer: int = pointer
        self._finalizer = weakref.finalize(self, lib.ring_buffer__free, pointer)

    def _on_sample(self, _ctx: int | None, data: int | None, size: int) -> int:
        self._records.append(ctypes.string_at(data, size) if data else b"")
        return 0

    def consume(self) -> list[bytes]:
        """Every committed record, oldest first; the consumer position advances past them."""
        if not self._finalizer.alive:
            raise _fail("ring_buffer__consume", 9)  # EBADF: already freed
        self._records = []
        _check("ring_buffer__consume", _load().ring_buffer__consume(self._pointer))
        records, self._records = self._records, []
        return records

    def free(self) -> None:
        """Unmap the ring and close the epoll fd (idempotent; also runs on garbage collection)."""
        self._finalizer()
