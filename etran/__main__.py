"""`python -m etran`: the same as the `etran` command."""
import sys

from etran.cli.main import main

sys.exit(main())
