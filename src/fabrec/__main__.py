"""``python -m fabrec`` (also what ``torchrun -m fabrec`` runs)."""

from fabrec.cli import run

run()
