"""A worker that stops reading its stdin in the middle of a big frame, and lingers.

It answers ``{packet, 4}`` JSON requests with ``null``; at a frame over 100 kB it
reads the first 1000 bytes, closes its stdin and sleeps, as a worker that stopped
reading would. Standard library only.
"""

import json
import os
import struct
import sys
import time

r, w = sys.stdin.buffer, sys.stdout.buffer
while True:
    (size,) = struct.unpack(">I", r.read(4))
    if size > 100_000:
        r.read(1000)
        os.close(0)
        time.sleep(30)
    request = json.loads(r.read(size))
    reply = json.dumps({"id": request["id"], "result": None}).encode()
    w.write(struct.pack(">I", len(reply)) + reply)
    w.flush()
