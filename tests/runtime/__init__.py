"""Runtime tests: load real BPF objects into the running kernel (see ``irobjects``)."""
