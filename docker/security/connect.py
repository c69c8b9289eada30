"""Try a TCP connection to each HOST:PORT argument (1 s timeout) and print what happened (lesson 07b §3)."""
import socket
import sys

for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        print(target, "-> connected")
    except OSError as error:
        print(target, "->", type(error).__name__ + ":", error)
