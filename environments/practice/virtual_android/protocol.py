"""The device side of the adb wire protocol over TCP.

What `adbd` does after `adb connect HOST:PORT`, enough for the real adb server
(and adbutils through it) to treat us as a phone:

- Every message is a 24-byte little-endian header (command, arg0, arg1, data
  length, data checksum, command ^ 0xffffffff) followed by the data.
- The host sends CNXN(version, max payload, "host::features=..."); we answer
  CNXN(0x01000001, max payload, "device::ro.product.name=...;...;features=...")
  and ask for no AUTH.
- The host opens a stream with OPEN(host id, 0, "service\\0"); we answer
  OKAY(our id, host id), send the service output as WRTE messages, each no
  larger than the host's max payload (checksum 0 for hosts that skip it),
  and wait for the host's OKAY before the next one (flow control: one WRTE
  in flight per stream), then CLSE.
- WRTE from the host (stdin) is acknowledged and ignored; CLSE from the host
  ends the stream.

Several streams run at once: each OPEN gets a worker thread, and one reader
thread per connection routes OKAY/CLSE to them. We do not advertise
`shell_v2`, so `shell:` streams are raw bytes.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Callable

log = logging.getLogger("vlagent.virtual_android.protocol")

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541

A_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024  # adb's own since 2016 (older hosts ask for 4 KB-256 KB in their CNXN)
HEADER = struct.Struct("<6I")
NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY", A_CLSE: "CLSE", A_WRTE: "WRTE", A_AUTH: "AUTH"}

# A service handler takes the name from OPEN ("shell:ls", "exec:screencap") and
# returns a function that produces the stream's output, or None when there is
# no such service (the stream is refused). Deciding is quick; producing may not be.
ServiceHandler = Callable[[str], "Callable[[], bytes] | None"]


def pack_message(command: int, arg0: int, arg1: int, data: bytes = b"", checksum: bool = True) -> bytes:
    """One message. Hosts speaking version 0x01000001+ ignore the checksum, so it may be 0 (adbd skips it too)."""
    checksum = sum(data) & 0xFFFFFFFF if checksum and data else 0
    return HEADER.pack(command, arg0, arg1, len(data), checksum, command ^ 0xFFFFFFFF) + data


class ProtocolError(RuntimeError):
    """The peer sent something that is not an adb message."""


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return bytes(buf)


class _Stream:
    def __init__(self, local_id: int, remote_id: int) -> None:
        self.local_id = local_id
        self.remote_id = remote_id
        self.acked = threading.Event()
        self.closed = threading.Event()


class _Connection:
    """One TCP connection from the adb server."""

    ACK_TIMEOUT = 30.0

    def __init__(self, sock: socket.socket, handler: ServiceHandler, banner: bytes) -> None:
        self.sock = sock
        self.handler = handler
        self.banner = banner
        self.max_payload = MAX_PAYLOAD
        self.checksums = True  # until the host's CNXN says it skips them
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.alive = True

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        msg = pack_message(command, arg0, arg1, data, checksum=self.checksums)
        with self.send_lock:
            self.sock.sendall(msg)

    def serve(self) -> None:
        try:
            while self.alive:
                header = _recv_exact(self.sock, HEADER.size)
                if header is None:
                    break
                command, arg0, arg1, length, _checksum, magic = HEADER.unpack(header)
                if magic != command ^ 0xFFFFFFFF:
                    raise ProtocolError(f"bad adb message magic for command {command:#x}")
                data = _recv_exact(self.sock, length) if length else b""
                if data is None:
                    break
                self.dispatch(command, arg0, arg1, data)
        except (OSError, ProtocolError) as e:
            if self.alive:
                log.debug("connection ended: %s", e)
        finally:
            self.close()

    def dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            # The host's max payload bounds every WRTE we send.
            self.max_payload = max(1024, min(arg1, MAX_PAYLOAD))
            self.checksums = arg0 < A_VERSION
            self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, self.banner)
        elif command == A_OPEN:
            self.open_stream(remote_id=arg0, name=data.rstrip(b"\0").decode("utf-8", "replace"))
        elif command == A_OKAY:
            stream = self.streams.get(arg1)
            if stream is not None:
                stream.acked.set()
        elif command == A_WRTE:
            # stdin for a stream: acknowledge, nothing reads it.
            if arg1 in self.streams:
                self.send(A_OKAY, arg1, arg0)
        elif command == A_CLSE:
            stream = self.streams.pop(arg1, None)
            if stream is not None:
                stream.closed.set()
                stream.acked.set()
        else:
            log.debug("ignoring %s", NAMES.get(command, hex(command)))

    def open_stream(self, remote_id: int, name: str) -> None:
        local_id = self.next_id
        self.next_id += 1
        stream = _Stream(local_id, remote_id)
        self.streams[local_id] = stream
        threading.Thread(target=self.run_stream, args=(stream, name), daemon=True, name=f"adb-stream-{name[:20]}").start()

    def run_stream(self, stream: _Stream, name: str) -> None:
        try:
            produce = self.handler(name)
            if produce is None:
                # Unknown service: adbd refuses the OPEN with a CLSE.
                self.streams.pop(stream.local_id, None)
                self.send(A_CLSE, 0, stream.remote_id)
                return
            # Accepted at once, like adbd; the output follows when the command is done.
            self.send(A_OKAY, stream.local_id, stream.remote_id)
            try:
                output = produce()
            except Exception as e:  # a bug in a command must not kill the connection
                log.exception("service %r failed", name)
                output = f"error: {type(e).__name__}: {e}\n".encode()
            view = memoryview(output)
            for start in range(0, len(output), self.max_payload):
                if stream.closed.is_set():
                    return
                stream.acked.clear()
                self.send(A_WRTE, stream.local_id, stream.remote_id, bytes(view[start : start + self.max_payload]))
                if not stream.acked.wait(self.ACK_TIMEOUT):
                    log.warning("no OKAY from the host for stream %r; closing it", name)
                    break
            if not stream.closed.is_set():
                self.streams.pop(stream.local_id, None)
                self.send(A_CLSE, stream.local_id, stream.remote_id)
        except OSError:
            pass

    def close(self) -> None:
        self.alive = False
        for stream in list(self.streams.values()):
            stream.closed.set()
            stream.acked.set()
        self.streams.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class AdbDeviceServer:
    """Listens on TCP like `adbd` in tcpip mode; `start()` / `stop()` on threads."""

    def __init__(self, handler: ServiceHandler, banner: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.banner = banner.encode("utf-8")
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.requested_port))
        listener.listen(8)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"adbd-{self.port}")
        self._thread.start()
        return self.port

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # listener closed by stop()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, self.handler, self.banner)
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=conn.serve, daemon=True, name="adbd-conn").start()

    def stop(self) -> None:
        """Close the listener and every connection: to the host the device is gone."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
