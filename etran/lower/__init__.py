"""Lowering: the typed program becomes an LLVM module for the BPF target.

`module` declares maps, hooks and functions and lowers each function;
`statements` and `expressions` lower function bodies; `function` holds what
they share about the function being lowered; `debuginfo` builds the DWARF that
becomes .BTF and .BTF.ext; `observe` is the layout of the probes `etran run`
and the differential harness read; `native` translates @egress verdicts for the
runtime's native path.
"""
