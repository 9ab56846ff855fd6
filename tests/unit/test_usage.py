"""Token counts are read from MiMo's `usage` in one place: the Responses usage object, the log line,
metrics and on_usage all get the same numbers, and no shape of `usage` can fail a request."""

from hypothesis import given
from hypothesis import strategies as st

from mimo_asgi._usage import TOKEN_KINDS, token_counts
from mimo_asgi.translate._response_object import map_usage

_odd = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True), st.text(max_size=3),
                 st.lists(st.integers(), max_size=2))


def test_mimos_usage_with_null_details():
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "prompt_tokens_details": None,
             "completion_tokens_details": {"reasoning_tokens": 5}}
    assert token_counts(usage) == {"input_tokens": 100, "cached_tokens": 0, "output_tokens": 20,
                                   "reasoning_tokens": 5, "total_tokens": 120}


@given(st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens"]), _odd),
       st.one_of(_odd, st.dictionaries(st.just("cached_tokens"), _odd)),
       st.one_of(_odd, st.dictionaries(st.just("reasoning_tokens"), _odd)))
def test_any_usage_gives_non_negative_counts_and_the_same_numbers_everywhere(top, prompt, completion):
    usage = {**top, "prompt_tokens_details": prompt, "completion_tokens_details": completion}
    counts = token_counts(usage)
    assert set(counts) == set(TOKEN_KINDS) and all(isinstance(v, int) and v >= 0 for v in counts.values())
    mapped = map_usage(usage)
    assert (mapped["input_tokens"], mapped["output_tokens"], mapped["total_tokens"]) == (
        counts["input_tokens"], counts["output_tokens"], counts["total_tokens"])
    assert mapped["input_tokens_details"]["cached_tokens"] == counts["cached_tokens"]
    assert mapped["output_tokens_details"]["reasoning_tokens"] == counts["reasoning_tokens"]
