"""OpenAIPolicy against a real HTTP server on 127.0.0.1 speaking the chat-completions protocol."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from fake_openai_server import FakeOpenAIServer, tool_call, tool_call_xml
from vlagent.actions import Action, ActionParseError
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.images import smart_resize
from vlagent.policy.base import HistoryItem
from vlagent.policy.errors import BackendAuthError, BackendUnavailable, ModelNotFoundError
from vlagent.policy.openai_policy import OpenAIPolicy


def screenshot(size=(1366, 768), color="white") -> Image.Image:
    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle([100, 100, 300, 160], fill="navy")
    return image


def observation(size=(1366, 768), platform: str | None = None) -> Observation:
    info = {"platform": platform} if platform else {}
    return Observation(image=screenshot(size), screen_size=size, info=info)


def make_policy(server: FakeOpenAIServer, **kwargs) -> OpenAIPolicy:
    kwargs.setdefault("backoff_s", 0.01)
    return OpenAIPolicy("fake-model", base_url=server.base_url, timeout=10, **kwargs)


def test_request_carries_tool_prompt_resized_image_and_history():
    reply = "I click the blue button.\n" + tool_call_xml("left_click", coordinate=[500, 250])
    with FakeOpenAIServer([reply]) as server:
        policy = make_policy(server, max_pixels=640 * 480)
        earlier = [
            HistoryItem(0, tool_call("type", text="hello"), thought="typing the greeting", error="field was disabled"),
            HistoryItem(1, tool_call("key", keys=["enter"]), thought="submitting", image=screenshot((1366, 768), "gray")),
        ]
        decision = policy.decide("press the blue button", observation(), earlier)

    assert server.problems == []
    assert decision.actions == [Action("click", point=(0.5, 0.25))]
    assert decision.thought == "I click the blue button."
    assert decision.raw_output == reply
    assert decision.usage and decision.usage["prompt_tokens"] > 0
    assert decision.timings["attempts"] == 1.0

    request = server.requests[0]
    system = request["messages"][0]
    assert system["role"] == "system"
    tools = system["content"].split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    tool = json.loads(tools)
    assert tool["function"]["name"] == "computer_use"
    assert "0-1000" in tool["function"]["description"]
    assert "left_click" in tool["function"]["parameters"]["properties"]["action"]["enum"]
    assert "<function=example_function_name>" in system["content"]  # Qwen3.5's call layout by default

    # Both screenshots (history step 1 and the current one) arrive at the smart-resized size.
    expected = smart_resize(1366, 768, max_pixels=640 * 480)
    assert expected[0] % 32 == 0 and expected[1] % 32 == 0 and expected[0] * expected[1] <= 640 * 480
    assert server.image_sizes[0] == [expected, expected]

    texts = "\n".join(server.texts(request))
    assert "press the blue button" in texts
    assert "typing the greeting" in texts and "field was disabled" in texts  # text-only step 0
    assert '"hello"' in texts
    # Step 1 (with its screenshot) is replayed as the model's own turn.
    assert any(m["role"] == "assistant" and '"enter"' in m["content"] for m in request["messages"])
    assert request["temperature"] == 0.0


def test_mobile_platform_uses_mobile_tool_and_pixels_format_scales_by_sent_size():
    sent = smart_resize(1080, 2400, factor=28)  # pixel formats are Qwen2.5-VL based: 14×2 patches
    reply = tool_call("click", tool="mobile_use", coordinate=[sent[0] // 2, sent[1] // 4])
    with FakeOpenAIServer([reply]) as server:
        policy = make_policy(server, fmt="qwen-pixels")
        decision = policy.decide("open settings", observation((1080, 2400), platform="android"), [])
    assert server.problems == []
    assert server.image_sizes[0] == [sent]
    system = server.requests[0]["messages"][0]["content"]
    assert '"name": "mobile_use"' in system and f"{sent[0]}x{sent[1]}" in system
    assert '{"name": <function-name>, "arguments"' in system  # JSON calls for the Qwen2.5-VL-style format
    (action,) = decision.actions
    assert action.kind == "click"
    assert action.point == pytest.approx((0.5, 0.25), abs=1 / sent[1])


def test_retries_a_500_once_then_succeeds():
    waits: list[float] = []
    with FakeOpenAIServer([tool_call("wait", time=1)], fail_first=1, fail_status=500) as server:
        policy = make_policy(server, sleep=waits.append)
        decision = policy.decide("wait a moment", observation(), [])
    assert server.chat_calls == 2
    assert len(waits) == 1
    assert decision.actions[0].kind == "wait"
    assert decision.timings["attempts"] == 2.0


def test_rate_limit_honours_retry_after_and_gives_up_after_max_retries():
    waits: list[float] = []
    with FakeOpenAIServer([tool_call("wait")], fail_first=10, fail_status=429) as server:
        policy = make_policy(server, max_retries=2, sleep=waits.append)
        with pytest.raises(BackendUnavailable) as info:
            policy.decide("wait", observation(), [])
    assert server.chat_calls == 3
    assert waits == [0.0, 0.0]  # the server's Retry-After: 0
    assert server.base_url in str(info.value) and "fake-model" in str(info.value) and "429" in str(info.value)


def test_timeouts_and_refused_connections_are_retried_with_backoff():
    import socket
    import threading

    # A server that accepts connections and never answers: every attempt times out.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        waits: list[float] = []
        policy = OpenAIPolicy("fake-model", base_url=base, timeout=0.3, max_retries=2, backoff_s=0.5, sleep=waits.append)
        with pytest.raises(BackendUnavailable, match="3 time.*Timeout"):
            policy.decide("wait", observation(), [])
        assert len(accepted) == 3  # first try + 2 retries
        assert 0.5 <= waits[0] <= 0.55 and 1.0 <= waits[1] <= 1.1  # exponential backoff with a little jitter
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
    # Nothing listens on that port any more: connection errors are retried the same way.
    waits = []
    policy = OpenAIPolicy("fake-model", base_url=base, timeout=2, max_retries=1, sleep=waits.append)
    with pytest.raises(BackendUnavailable, match="2 time.*Connection"):
        policy.decide("wait", observation(), [])
    assert len(waits) == 1


def test_bad_credentials_give_a_clear_error():
    with FakeOpenAIServer([tool_call("wait")], api_key="right-key") as server:
        policy = OpenAIPolicy("fake-model", base_url=server.base_url, api_key="wrong-key", timeout=10)
        with pytest.raises(BackendAuthError) as info:
            policy.decide("anything", observation(), [])
    message = str(info.value)
    assert server.base_url in message and "fake-model" in message and "401" in message
    assert server.chat_calls == 1  # never retried


def test_transport_is_the_shared_chat_client(monkeypatch):
    from vlagent.policy.chat_client import ChatClient
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("VLAGENT_API_KEY", raising=False)
    with FakeOpenAIServer([tool_call("wait")], status=401) as server:
        policy = OpenAIPolicy("fake-model", base_url=server.base_url, api_key_env="MY_KEY", max_retries=1, timeout=10)
        assert isinstance(policy.chat, ChatClient) and policy.client is policy.chat.client
        policy.max_tokens = 77  # the policy's transport settings are the client's
        assert policy.chat.max_tokens == 77 and policy.endpoint == server.base_url
        assert policy.list_models() == ["fake-model"]
        with pytest.raises(BackendAuthError, match=r"\$MY_KEY"):
            policy.decide("anything", observation(), [])


def test_api_key_from_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("VLAGENT_API_KEY", "right-key")
    with FakeOpenAIServer([tool_call("wait")], api_key="right-key") as server:
        policy = OpenAIPolicy("fake-model", base_url=server.base_url, timeout=10)
        assert policy.decide("wait", observation(), []).actions[0].kind == "wait"


def test_unknown_model_names_the_model_and_the_served_ones():
    with FakeOpenAIServer([tool_call("wait")], models=["qwen3.5-2b"]) as server:
        policy = OpenAIPolicy("no-such-model", base_url=server.base_url, timeout=10)
        with pytest.raises(ModelNotFoundError) as info:
            policy.decide("anything", observation(), [])
    message = str(info.value)
    assert "no-such-model" in message and server.base_url in message and "qwen3.5-2b" in message


def test_unparseable_reply_raises_action_parse_error():
    with FakeOpenAIServer(["I would click somewhere near the top."]) as server:
        policy = make_policy(server)
        with pytest.raises(ActionParseError):
            policy.decide("click the top", observation(), [])
    assert server.chat_calls == 1


def test_reasoning_is_the_thought_not_an_action():
    reply = "<think>The button is at the top left.</think>\nClicking it.\n" + tool_call(
        "left_click", coordinate=[150, 170]
    )
    with FakeOpenAIServer([reply]) as server:
        decision = make_policy(server).decide("click", observation(), [])
    assert decision.thought == "The button is at the top left.\nClicking it."
    assert decision.actions == [Action("click", point=(0.15, 0.17))]


def test_structured_tool_calls_and_reasoning_field_are_read():
    # Servers with a tool-call / reasoning parser return them outside the text.
    message = {
        "content": "Scrolling down.",
        "reasoning_content": "The list continues below.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "computer_use", "arguments": json.dumps({"action": "scroll", "pixels": -300})},
            }
        ],
    }
    with FakeOpenAIServer([message]) as server:
        decision = make_policy(server).decide("scroll", observation(), [])
    assert decision.actions == [Action("scroll", direction="down", amount=300)]
    assert decision.thought == "The list continues below.\nScrolling down."
    assert "<tool_call>" in decision.raw_output


# ---------------------------------------------------------------------------- with the agent loop


class MemoryEnv(BaseEnvironment):
    """An in-memory screen: every observation is a fresh image, executed actions are kept."""

    name = "memory"

    def __init__(self, size=(800, 600)) -> None:
        self.size = size
        self.executed: list[Action] = []

    def observe(self) -> Observation:
        shade = 255 - 40 * (len(self.executed) % 5)
        return Observation(image=screenshot(self.size, (shade, shade, shade)), screen_size=self.size)

    def execute(self, action: Action) -> None:
        self.executed.append(action)


def test_agent_run_sends_first_step_history_in_second_request(tmp_path):
    from vlagent.agent import Agent

    replies = [
        "Clicking the field.\n" + tool_call_xml("left_click", coordinate=[200, 300]),
        "Typing the name.\n" + tool_call("type", text="alice"),
        tool_call("answer", text="done typing"),
    ]
    env = MemoryEnv()
    with FakeOpenAIServer(replies) as server:
        agent = Agent(make_policy(server), env, max_steps=5, run_dir=tmp_path / "run", history_images=1)
        result = agent.run("type alice into the field")
    assert server.problems == []
    assert result.status == "answered" and result.answer == "done typing"
    assert env.executed == [Action("click", point=(0.2, 0.3)), Action("type", text="alice")]
    assert len(server.requests) == 3
    second = "\n".join(server.texts(server.requests[1]))
    assert "Clicking the field." in json.dumps(server.requests[1]) or "Clicking the field." in second
    assert any("<parameter=action>\nleft_click" in m["content"] for m in server.requests[1]["messages"] if m["role"] == "assistant")
    # history_images=1: the third request carries the current screenshot and one earlier one.
    assert len(server.image_sizes[2]) == 2
    third = "\n".join(server.texts(server.requests[2]))
    assert "[200, 300]" in third  # step 0, now text only


def test_secret_value_never_reaches_the_server(tmp_path):
    from vlagent.agent import Agent

    secret = "hunter2-S3cr3t!"
    replies = [
        tool_call("type", text="{{password}}"),
        # A model that echoes what it saw must still not see the value.
        lambda body: tool_call("answer", text="typed"),
    ]
    env = MemoryEnv()
    with FakeOpenAIServer(replies) as server:
        policy = make_policy(server)  # the agent tells it the secret names, step by step
        agent = Agent(policy, env, max_steps=4, secrets={"password": secret}, run_dir=tmp_path / "run")
        result = agent.run("log in with {{password}}")
    assert result.status == "answered"
    assert env.executed == [Action("type", text=secret)]  # the value is typed on the screen...
    assert len(server.raw_bodies) == 2
    for body in server.raw_bodies:  # ...and appears in no request
        assert secret.encode() not in body and json.dumps(secret).encode() not in body
    assert "{{password}}" in server.requests[0]["messages"][0]["content"]
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".html", ".json"):
            assert secret not in path.read_text(encoding="utf-8")
