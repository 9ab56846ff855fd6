"""The README's plugin example, run as written (with a trivial host app standing in for `my_app`)."""

import openai
from support import host_app

from mimo_asgi.testing import Answer, ToolCall

my_app = host_app()


def test_my_gateway_calls_tools(fake_mimo, mimo_gateway):
    fake_mimo.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    gw = mimo_gateway(my_app, fake=fake_mimo)      # my_app wrapped, pointed at the fake, under uvicorn
    client = openai.OpenAI(base_url=gw.url, api_key="x")
    out = client.responses.create(model="mimo-v2.5-pro", input="Weather in Oslo?")
    assert out.output[-1].name == "get_weather"
    assert fake_mimo.requests[-1].body["model"] == "mimo-v2.5-pro"
