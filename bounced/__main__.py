"""`python -m bounced`: the same as the `bounced` command."""

from bounced.cli import main

# Guarded: worker processes import this module again and must not rerun the command.
if __name__ == "__main__":
    main()
