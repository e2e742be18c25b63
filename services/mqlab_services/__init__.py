"""mqlab microservices: a producer and a consumer that talk to RabbitMQ, Redis or Kafka.

Both read one :class:`~mqlab_services.settings.Settings` object built from ``MQLAB_*``
environment variables, exchange :mod:`~mqlab_services.envelope` messages through one
adapter per broker (:mod:`mqlab_services.adapters`), and write receipts to the
:mod:`~mqlab_services.ledger` so that every message can be accounted for.
"""

__version__ = "0.1.0"
