import sys

import redis

prefix = sys.argv[1] if len(sys.argv) > 1 else "Hello World"

r = redis.Redis(host="localhost", port=6379)

for i in range(10):
    message = f"{prefix} {i}"
    r.publish("chatroom", message)
    print(f" [x] Sent {message}")
