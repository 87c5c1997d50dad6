"""From LLVM IR to a BPF object, and back to readable instructions.

`emit`: LLVM's optimiser and the BPF back end produce the ELF object;
`objfile`: reading that object (sections, relocations, BTF line info);
`disasm`: instructions in the kernel's notation with the DSL lines interleaved;
`stack`: the stack a compiled program uses, read from its instructions.
"""
