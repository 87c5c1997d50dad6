"""The typed program and the definitions every stage shares.

`types`: the language's types and struct layout; `tir`: the typed program the
checker produces and the interpreter and lowering consume; `semantics`: integer
arithmetic as the kernel does it (one definition for the constant folder and
the interpreter); `codec`: values to and from the bytes of map keys, values
and packets; `validate`: structural checks of a typed program (run in tests).
"""
