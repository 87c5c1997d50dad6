"""The differential harness: the compiled program in the kernel against the interpreter.

`harness` runs one hook both ways and lists the differences; `inputs` fuzzes a
transport's hooks with generated inputs (`etran fuzz FILE`); `programs` drives
generated programs through the whole pipeline and the kernel (`etran fuzz
--programs N`).
"""
