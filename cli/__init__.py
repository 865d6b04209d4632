"""The kmq command line, imported as kmq.cli."""
