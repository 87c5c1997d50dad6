"""The `etran` command line.

`main` parses arguments and dispatches; `runtime_commands` is `up`, `status`
and `down`; `show` prints kernel and interpreter results side by side;
`verifier_report` explains a verifier rejection at the DSL line; `demo` is
`etran demo`. Heavy modules are imported inside the commands that need them,
so every command starts quickly.
"""
