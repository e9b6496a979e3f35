"""`python -m imggen`."""

from imggen.commands import main

main()
