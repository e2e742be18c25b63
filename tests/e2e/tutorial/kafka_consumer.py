from kafka3 import KafkaConsumer

consumer = KafkaConsumer("datascience", bootstrap_servers="localhost:9092")

print(" [*] Waiting for messages. To exit press CTRL+C")
for message in consumer:
    print(f" [x] Received {message.value.decode()}")
