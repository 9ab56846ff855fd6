"""Serve OpenAI Responses and Chat Completions clients from Xiaomi MiMo, as a raw ASGI middleware."""
