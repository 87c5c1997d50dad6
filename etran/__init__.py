"""etran: kernel network transports written in a restricted Python, checked for what the
eBPF verifier demands, compiled to BPF and loaded into XDP hooks.

Importing the package first makes the classes the rest of it defines cheaper to create in
every process after the first (`etran.classcache`): start-up is most of a command's time."""
from etran import classcache

classcache.install()
