import sys

from kafka3 import KafkaProducer

prefix = sys.argv[1] if len(sys.argv) > 1 else "Hello World"

producer = KafkaProducer(bootstrap_servers="localhost:9092")

for i in range(10):
    message = f"{prefix} {i}"
    producer.send("datascience", message.encode())
    print(f" [x] Sent {message}")

producer.flush()
producer.close()
