"""Upload throughput: one large FASTA through the API, beside `sha256sum` of the same file.

    .venv/bin/python bench/upload.py [--size-mb 1000] [--file PATH] [--repeat 3]

Starts the portal (`manage.py serve`) on a throwaway work directory and SQLite database (or
DATABASE_URL if set), makes a token, then times `sha256sum FILE` and `curl -F file=@FILE` to
`POST /api/v1/uploads/`, and reads the server's peak memory. Goal: the upload costs at most
1.5x hashing the file, in memory that does not grow with the file.
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL = 1.5


def make_fasta(path: Path, size: int) -> None:
    """A protein FASTA shaped like a UniProt download: ~80-byte headers, 60-residue lines."""
    rng = random.Random(1)
    pool = bytes(rng.choice(b"ACDEFGHIKLMNPQRSTVWY") for _ in range(1 << 16))
    with open(path, "wb") as out:
        written = number = 0
        while written < size:
            length = rng.randint(50, 700)
            start = rng.randrange(len(pool) - length)
            seq = pool[start : start + length]
            record = (
                b">sp|P%05d|PROT%d_HUMAN Protein %d OS=Homo sapiens OX=9606 PE=1 SV=1\n"
                % (number % 100000, number, number)
            ) + b"".join(seq[i : i + 60] + b"\n" for i in range(0, length, 60))
            out.write(record)
            written += len(record)
            number += 1


def memory_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--file", type=Path, help="upload this FASTA instead of a generated one")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is shown")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    env = {**os.environ, "PORTAL_WORKDIR": str(work), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    python = sys.executable
    try:
        path = args.file
        if path is None:
            path = work / "proteome.fasta"
            print(f"writing a {args.size_mb} MB FASTA to {path} ...", flush=True)
            make_fasta(path, args.size_mb * 1_000_000)
        size = path.stat().st_size

        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
        subprocess.run(
            [python, "manage.py", "seed_demo"], cwd=REPO, env=env, check=True, capture_output=True
        )
        token = subprocess.run(
            [python, "manage.py", "createtoken", "admin"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [python, "manage.py", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        try:
            hash_times, upload_times, peaks = [], [], []
            rss_before = memory_kb(server.pid, "VmRSS")
            for _ in range(args.repeat):
                seconds, out = timed(["sha256sum", str(path)])
                hash_times.append(seconds)
                expected = out.split()[0]
                seconds, out = timed(
                    [
                        "curl",
                        "-sS",
                        "--fail-with-body",
                        "-H",
                        f"Authorization: Token {token}",
                        "-F",
                        "project=1",
                        "-F",
                        f"file=@{path}",
                        f"http://127.0.0.1:{port}/api/v1/uploads/",
                    ]
                )
                upload_times.append(seconds)
                answer = json.loads(out)
                assert answer["sha256"] == expected, (answer, expected)
                peaks.append(memory_kb(server.pid, "VmHWM"))
                # Remove it again, so the next run stores it anew rather than finding it there.
                subprocess.run(
                    [
                        "curl",
                        "-sS",
                        "-X",
                        "DELETE",
                        "-H",
                        f"Authorization: Token {token}",
                        f"http://127.0.0.1:{port}/api/v1/uploads/{answer['id']}/",
                    ],
                    check=True,
                )
        finally:
            server.terminate()
            server.wait(10)

        hashing, upload = min(hash_times), min(upload_times)
        growth = (max(peaks) - rss_before) / 1024
        ratio = upload / hashing
        print()
        print(f"file: {path.name}, {size / 1e6:,.0f} MB; best of {args.repeat}")
        print(f"{'measure':<34}{'seconds':>10}{'MB/s':>10}{'vs sha256sum':>15}")
        print(f"{'sha256sum FILE':<34}{hashing:>10.2f}{size / 1e6 / hashing:>10.0f}{'1.00x':>15}")
        print(
            f"{'upload through the API (curl -F)':<34}{upload:>10.2f}{size / 1e6 / upload:>10.0f}"
            f"{ratio:>14.2f}x"
        )
        print(f"{'server memory: before':<34}{rss_before / 1024:>10.0f} MB")
        print(f"{'server memory: peak growth':<34}{growth:>10.0f} MB")
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"\ngoal: upload <= {GOAL}x sha256sum -> {ratio:.2f}x, {verdict} the goal")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
