"""HTTP service and command line: thin layers over layers/ and data/."""
