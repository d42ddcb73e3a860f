"""Fill pynetdicom's qrscp database through its own library, within a time budget.

Usage: ``python -m benchmarks.scale_pynetdicom_fill DATABASE FILES BUDGET``:
DATABASE is the SQLite file its ``qrscp --database-location`` reads, FILES a
text file listing the archive's files (one a line, in order), BUDGET the
seconds it may take.  Instances already in the database are skipped (the
files are added in order, so the count says where to go on): a later run
continues where this one stopped.  This is what its C-STORE handler does per
instance (``db.add_instance``, one commit each), minus the network.  Prints
one JSON record: instances held, added now, seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    database, listing, budget = Path(argv[0]), Path(argv[1]), float(argv[2])
    from pydicom import dcmread
    from pynetdicom.apps.qrscp import db
    from sqlalchemy.orm import sessionmaker

    engine = db.create(f"sqlite:///{database}")
    session = sessionmaker(bind=engine)()
    files = listing.read_text().split("\n")
    files = [name for name in files if name]
    held = session.query(db.Instance).count()
    started = time.perf_counter()
    added = 0
    for name in files[held:]:
        if time.perf_counter() - started > budget:
            break
        ds = dcmread(name, stop_before_pixels=True)
        db.add_instance(ds, session, name)
        added += 1
    seconds = time.perf_counter() - started
    session.close()
    engine.dispose()
    record = {"ok": True, "held": held + added, "added": added, "seconds": seconds}
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
