"""End-to-end tests: a real Kafka-protocol broker and real ``memabrad run`` subprocesses."""
