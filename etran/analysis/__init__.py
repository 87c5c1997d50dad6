"""Whole-program analyses of the typed program, run after the checker.

`rules`: the verifier-aware rules that need the call graph (recursion, call
depth, stack, helpers per hook); `stack`: each hook's expected stack; `budget`:
each hook's estimated instruction count and verifier work.
"""
