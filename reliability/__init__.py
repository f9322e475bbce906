"""Attacks on a running `kotally serve` (issue 5): `python -m reliability.run --help`."""
