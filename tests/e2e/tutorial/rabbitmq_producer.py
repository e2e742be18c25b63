import sys

import pika

prefix = sys.argv[1] if len(sys.argv) > 1 else "Hello World"

connection = pika.BlockingConnection(pika.ConnectionParameters("localhost"))
channel = connection.channel()
channel.queue_declare(queue="mailbox")

for i in range(10):
    message = f"{prefix} {i}"
    channel.basic_publish(exchange="", routing_key="mailbox", body=message)
    print(f" [x] Sent {message}")

connection.close()
