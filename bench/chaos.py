"""Chaos in the lab (components killed at random while writes are counted): the entry point of lab.chaos.

    python -m bench.chaos [--dir LAB_DIR] [--quick | --duration 600] [--seed N] [--rate 10]

See lab/chaos.py; the last line printed is one JSON object of figures.
"""

from lab.chaos import main

if __name__ == "__main__":
    main()
