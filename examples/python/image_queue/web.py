# SPDX-License-Identifier: Apache-2.0
"""The image queue's web front end: POST /upload stores the image, pushes a
"make a thumbnail" task into a spooled producer and answers 202 at once.

    FABRIC_CLUSTER=demo python3 web.py [--port 8080] [--data DIR]

The task is on disk (fsync) before the answer goes out: if this process
dies, a restart on the same --data directory delivers what workers had not
acked yet.
"""

import argparse
import http.server
import json
import os
import signal
import uuid

import fabricmq as fm

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--data", default="/tmp/image-queue")
args = ap.parse_args()
uploads = os.path.join(args.data, "uploads")
os.makedirs(uploads, exist_ok=True)

node = fm.Node.from_env("web")
thumbnails = fm.Producer(node, "thumbnails",
                         spool_dir=os.path.join(args.data, "spool"))


class Upload(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/upload":
            self.send_error(404)
            return
        image = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = os.path.join(uploads, uuid.uuid4().hex + ".img")
        with open(path, "wb") as f:
            f.write(image)
        task = thumbnails.push(path, {"name": self.headers.get("X-Name", "")})
        reply = json.dumps({"task": str(task), "path": path}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_) -> None:  # quiet
        pass


def stop(*_) -> None:
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, stop)
server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Upload)
print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    server.server_close()
    thumbnails.close()
    node.close()
