"""Fault injection, model output: `parse_actions` on thousands of mutated real model replies.

The promise (vlagent/actions/parsers.py): output that cannot be read without guessing raises
ActionParseError; anything else that comes out is a list of valid Actions whose points lie in [0, 1].
No other exception escapes, whatever the text, and no reply makes the parser hang. The mutants come from
tests/parse_fuzz.py (a seeded mutator of the replies in test_parsers.py; `benchmarks/reliability.py` runs
many more). The regressions below are the replies the fuzzer found that broke the promise.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from fault_checks import record_fault
from parse_fuzz import check_output, fuzz, seed_corpus
from vlagent.actions import ActionParseError, parse_actions

FUZZ_INPUTS = int(os.environ.get("VLAGENT_FUZZ_INPUTS", "3000"))
FUZZ_SEED = int(os.environ.get("VLAGENT_FUZZ_SEED", "20240615"))


def test_the_seed_corpus_is_the_parser_tests_replies():
    corpus = seed_corpus()
    assert len(corpus) > 80
    assert any("<tool_call>" in t for t in corpus) and any("Action:" in t for t in corpus)
    assert any(t.lstrip().startswith(("{", "[")) for t in corpus)
    for text in corpus:  # the seeds themselves keep the promise
        assert check_output(text) is None, text


def test_mutated_replies_raise_only_parse_errors_and_give_only_points_in_the_unit_square(record_property):
    result = fuzz(FUZZ_SEED, FUZZ_INPUTS)
    record_fault(record_property, "fuzz", "parse_actions", transient=False, survived=result["failures"] == 0,
                 tried=result["inputs"], fuzz_inputs=result["inputs"], fuzz_calls=result["calls"],
                 parsed=result["parsed_auto"])
    assert result["parsed_auto"] > 0 and result["parse_errors_auto"] > 0  # both sides of the parser are reached
    assert result["failures"] == 0, "\n".join(f"{problem}\n  input: {text[:300]!r}" for text, problem in result["examples"])


def _qcall(arguments: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": "computer_use", "arguments": arguments}) + "\n</tool_call>"


# Replies the fuzzer found, each once a crash (an exception other than ActionParseError) or a hang.
REGRESSIONS = [
    pytest.param(_qcall({"action": "left_click", "coordinate": [400, 0]}).replace("400", "1" + "0" * 400),
                 id="integer-of-400-digits"),  # float() overflowed: OverflowError
    pytest.param(_qcall({"action": "left_click", "coordinate": [400, 0]}).replace("400", "9" * 5000),
                 id="integer-of-5000-digits"),  # json refuses to read it: a bare ValueError
    pytest.param("[" * 100_000, id="json-nested-100000-deep"),  # RecursionError
    pytest.param('{"a": ' * 50_000, id="json-objects-nested"),
    pytest.param("<tool_call>" + "[" * 100_000 + "</tool_call>", id="nested-inside-a-tool-call"),
    pytest.param("Action: click(start_box=" + "(" * 100_000 + ")", id="uitars-nested-parentheses"),
    pytest.param("Action: click(start_box=" + "[" * 100_000 + "'(1,2)'" + "]" * 100_000 + ")", id="uitars-nested-list"),
]


@pytest.mark.parametrize("text", REGRESSIONS)
def test_replies_that_once_crashed_the_parser(text):
    assert check_output(text) is None


# Replies of megabytes that once took minutes to hours (quadratic scans); each is read in well under a
# second now. The bound is 100x that, so a loaded machine passes and the old behaviour does not.
HUGE = [
    pytest.param("<tool_call>" * 300_000, id="unclosed-tool-calls"),  # 137 s before
    pytest.param("<think>" * 500_000, id="unclosed-think"),  # quadratic regex: hours
    pytest.param(_qcall({"action": "left_click", "coordinate": [1, 2]}) + "<|endoftext|>" * 200_000 + "x",
                 id="end-of-turn-tokens-not-at-the-end"),  # quadratic backtracking: hours
    pytest.param(_qcall({"action": "left_click", "coordinate": [1, 2]}) + "\n<|im_end|>" * 200_000,
                 id="end-of-turn-tokens-at-the-end"),
    pytest.param("x" * 4_000_000 + _qcall({"action": "left_click", "coordinate": [500, 500]}), id="4-MB-of-prose"),
]


@pytest.mark.parametrize("text", HUGE)
def test_replies_of_megabytes_are_read_in_linear_time(text):
    t = time.perf_counter()
    assert check_output(text) is None
    assert time.perf_counter() - t < 30.0


def test_end_of_turn_tokens_are_still_stripped_only_at_the_end():
    call = _qcall({"action": "left_click", "coordinate": [500, 250]})
    for tail in ("<|im_end|>", " <|im_end|>\n<|endoftext|>  ", "\n<|endoftext|>\n"):
        assert parse_actions(call + tail)[0].point == (0.5, 0.25)
    with pytest.raises(ActionParseError):  # a token followed by prose is not an end of turn
        parse_actions("<|im_end|> no call here <|im_end|>x", fmt="qwen")


def test_model_text_read_as_a_call_prints_no_python_warnings():
    # UI-TARS calls are read with ast; "\{" in model text made Python print a DeprecationWarning (a
    # SyntaxWarning from 3.12) on the agent's console, for every such reply.
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert parse_actions("Action: type(content='a\\{b \\d')", fmt="uitars")[0].kind == "type"
    assert [str(w.message) for w in seen] == []
