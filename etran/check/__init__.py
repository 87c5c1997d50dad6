"""The checker: a syntax tree becomes a typed program, or diagnostics.

`modules` loads the main file and the DSL modules it imports and declares their
names; `statements`, `calls` and `expressions` check function bodies (one class,
built up in that order: `BodyChecker(CallChecker(ExprChecker))`); `context`
holds what they share about the function being checked; `flow` the facts that
change along a path (what is known to be non-None, which views are still
valid); `scope` what a module-level name stands for; `builtins` the names the
language provides.
"""
