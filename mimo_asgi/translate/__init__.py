"""Sans-IO translation between the OpenAI protocols and MiMo's chat completions.

Nothing in this package imports ASGI, httpx or anyio: it takes plain data in and
hands plain data out.
"""
