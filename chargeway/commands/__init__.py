"""CLI subcommands, each in its own module; chargeway/cli.py registers them."""
