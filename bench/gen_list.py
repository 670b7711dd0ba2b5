#!/usr/bin/env python3
"""gen_list.py N [--unordered-refs] - write an affected-individual CSV of N rows to stdout.

Deterministic (seeded), realistic widths: every row has an email, about a third a fax,
all a US postal address, plus two template variables. Used by bench/ and by the demo.
Refs are R00000001, R00000002, ... in order: a sort of them is cheap. --unordered-refs
writes the same kind of refs in no order (row i gets a fixed permutation of i, unique up
to 10^8 rows), as a list exported by something other than its key would have them.
"""
import csv
import random
import sys

STATES = ["CA", "NY", "TX", "WA", "OH", "FL", "IL", "MA", "CO", "AZ"]
FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eoin", "Fatima", "Giang", "Hana", "Iwona", "José"]
LAST = ["Lee", "Ray", "Nguyễn", "Kowalska", "Ó Briain", "Smith", "García", "Tanaka", "Okafor"]


def main():
    n = int(sys.argv[1])
    unordered = "--unordered-refs" in sys.argv[2:]
    rng = random.Random(4711)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["ref", "name", "email", "fax", "address1", "address2", "city", "region",
                  "postal_code", "country", "plan", "exposed"])
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        ref = i * 2654435761 % 10**8 if unordered else i
        fax = "+1212555%04d" % (i % 10000) if i % 3 == 0 else ""
        out.writerow([
            "R%08d" % ref, f"{first} {last}", f"user{i}@example.com", fax,
            f"{rng.randint(1, 9999)} Main St", "Apt %d" % (i % 50) if i % 4 == 0 else "",
            "Springfield", rng.choice(STATES), "%05d" % rng.randint(10000, 99999), "US",
            rng.choice(["gold", "silver"]), "name, email, SSN",
        ])


if __name__ == "__main__":
    main()
