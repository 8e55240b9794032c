"""``python -m chargeway`` is the same as the ``chargeway`` console script."""

from chargeway.cli import main

main()
