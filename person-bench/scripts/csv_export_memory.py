#!/usr/bin/env python3
"""Measures the server's memory while it streams a reporting CSV export of N persons (docs/benchmarks.md).

1. Starts the release server on a fresh SQLite file, creates one fully populated person through the API (two
   tenures, one cross-reference), and stops it.
2. Clones that person's row N-1 times straight into the `persons` table (new ids and personRefs, the document's
   `id` and `personRef` rewritten): a bench-only shortcut, because loading N persons through the API takes far
   longer and the export reads only this table. Clones are marked as indexed so the server does not spend the run
   computing their search keys.
3. Starts the server again, samples its resident memory (VmRSS) every 100 ms while `GET
   /api/v1/reporting/{table}?format=csv` streams each table to a counter, and prints rows, seconds, rows per
   second, and RSS before, peak and after.

Talks only to 127.0.0.1. Usage: csv_export_memory.py --binary target/release/person-api --persons 1000000 --dir /tmp/x
"""

import argparse
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
import uuid

PORT = 18089


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary, db):
    env = dict(os.environ, PERSON_API_STORE=f"sqlite://{db}", PERSON_API_BIND=f"127.0.0.1:{PORT}",
               PERSON_API_LOG="warn")
    env.pop("PERSON_API_CONFIG", None)
    process = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not become ready within 60 s")


def stop(process):
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def request(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"null")


def seed(binary, db, persons):
    server = start(binary, db)
    try:
        person = request("POST", "/api/v1/persons", {
            "title": "Ms", "firstName": "Amara", "middleName": "Jo", "surname": "Okafor-Whitfield",
            "dateOfBirth": "1984-02-29", "placeOfBirth": "Lagos", "personTypes": ["Tenant"],
            "reason": "New tenancy",
            "tenures": [
                {"id": str(uuid.uuid4()), "type": "Secure", "startDate": "2010-04-01",
                 "assetFullAddress": "Flat 3, 12 Mare Street, London E8 1DY", "assetId": str(uuid.uuid4()),
                 "uprn": "100021045678", "paymentReference": "1234567890", "propertyReference": "00012345"},
                {"id": str(uuid.uuid4()), "type": "Introductory", "startDate": "2008-01-01",
                 "endDate": "2009-12-31", "assetFullAddress": "1 Dalston Lane, London E8 3AZ",
                 "assetId": str(uuid.uuid4())},
            ],
        })
        request("POST", f"/api/v1/persons/{person['id']}/references", {"system": "tenure", "id": "t-seed", "reason": "Seed"})
    finally:
        stop(server)
    connection = sqlite3.connect(db)
    row = connection.execute("SELECT * FROM persons").fetchone()
    columns = [d[0] for d in connection.execute("SELECT * FROM persons").description]
    template = dict(zip(columns, row))
    document = json.loads(template["document"])
    document.pop("references", None)  # references are unique per person: clones hold none
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    placeholders = ",".join("?" for _ in columns)
    statement = f"INSERT INTO persons ({','.join(columns)}) VALUES ({placeholders})"
    started = time.time()
    batch = []
    for i in range(2, persons + 1):
        clone = dict(template)
        ident = str(uuid.uuid4())
        document["id"] = ident
        document["personRef"] = i
        clone.update(id=ident, person_ref=i, document=json.dumps(document, separators=(",", ":")),
                     dedup_key=None, keys_indexed=1, reference_count=0)
        batch.append(tuple(clone[c] for c in columns))
        if len(batch) == 10000:
            connection.executemany(statement, batch)
            batch.clear()
    if batch:
        connection.executemany(statement, batch)
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    print(f"seeded {persons} persons in {time.time() - started:.0f} s; file {os.path.getsize(db) / 1e9:.2f} GB")


def export(pid, table):
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append(rss_kib(pid))
            time.sleep(0.1)

    before = rss_kib(pid)
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.time()
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
    connection.request("GET", f"/api/v1/reporting/{table}?format=csv")
    response = connection.getresponse()
    assert response.status == 200, response.status
    lines = 0
    size = 0
    while chunk := response.read(1 << 16):
        # Every record ends with CRLF; counting the LF alone cannot miss one split across two chunks (the seeded
        # values hold no line breaks).
        lines += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.time() - started
    done.set()
    sampler.join()
    rows = lines - 1  # the header
    quarter = max(len(samples) // 4, 1)
    quarters = [max(samples[i:i + quarter]) / 1024 for i in range(0, quarter * 4, quarter) if samples[i:i + quarter]]
    print(f"{table}: {rows:,} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s; "
          f"RSS before {before / 1024:.1f} MiB, peak {max(samples + [before]) / 1024:.1f} MiB, "
          f"after {rss_kib(pid) / 1024:.1f} MiB; peak per quarter of the export "
          f"{', '.join(f'{q:.1f}' for q in quarters)} MiB ({len(samples)} samples)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/person-api")
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    db = os.path.join(args.dir, f"csv-{args.persons}.db")
    if not os.path.exists(db):
        seed(args.binary, db, args.persons)
    server = start(args.binary, db)
    try:
        for table in ["persons", "person-tenures", "person-references"]:
            export(server.pid, table)
    finally:
        stop(server)


if __name__ == "__main__":
    main()
