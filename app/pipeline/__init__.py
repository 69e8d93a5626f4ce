"""From a parsed request to stored rows, without Flask: check, de-duplicate, map, store.

Every message is mapped here, once, before it is stored: the outbox then holds
exactly what will leave. Refusals are domain errors (`errors.py`) that the web
routes turn into answers.
"""
