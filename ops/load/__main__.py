"""`python -m ops.load`: the load harness (ops/load/harness.py)."""

from ops.load.harness import main

main()
