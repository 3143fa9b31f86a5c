"""``State`` copies, deep-copies and pickles like the dict it is a view of."""

from __future__ import annotations

import copy
import pickle

import pytest
from asgi_harness import http_scope

from microasgi import App, Request
from microasgi.datastructures import State


def test_a_copy_has_its_own_names_and_shares_the_values() -> None:
    state = State({"pool": ["conn"], "name": "a"})
    copied = copy.copy(state)
    copied.name = "b"
    copied.extra = 1
    copied.pool.append("shared")
    assert (state.name, "extra" in state, state.pool) == ("a", False, ["conn", "shared"])
    assert copy.copy(State()) is not None  # the empty State once recursed forever


def test_a_deep_copy_shares_nothing() -> None:
    state = State({"settings": {"debug": False}})
    state.me = state  # a cycle through the State itself
    copied = copy.deepcopy(state)
    copied.settings["debug"] = True
    assert state.settings == {"debug": False}
    assert copied.me is copied


def test_app_state_and_request_state_copy() -> None:
    app = App()
    app.state.config = {"a": 1}
    assert copy.deepcopy(app.state).config == {"a": 1}
    request = Request(http_scope(state={"user": "ada"}))
    snapshot = copy.copy(request.state)
    request.state.user = "bob"
    assert snapshot.user == "ada"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trips(protocol: int) -> None:
    state = State({"n": 1, "items": [1, 2]})
    loaded = pickle.loads(pickle.dumps(state, protocol))
    assert isinstance(loaded, State)
    assert (loaded.n, loaded.items, list(loaded)) == (1, [1, 2], ["n", "items"])


def test_a_state_made_without_init_fails_clearly() -> None:
    bare = State.__new__(State)
    with pytest.raises(AttributeError):
        _ = bare.anything
