"""The `hashmesh` command line: one module per group of commands, dispatched by main."""
