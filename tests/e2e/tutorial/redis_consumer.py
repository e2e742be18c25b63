import redis

r = redis.Redis(host="localhost", port=6379)
pubsub = r.pubsub()
pubsub.subscribe("chatroom")

print(" [*] Waiting for messages. To exit press CTRL+C")
for message in pubsub.listen():
    if message["type"] == "message":
        print(f" [x] Received {message['data'].decode()}")
