"""Routes, converters, the lookup tree, ``Router`` and ``Mount``.

A path template such as ``/users/{user_id:int}/files/{rest:path}`` is split on ``/``
into segments. Every route of a router goes into a segment trie; a lookup walks the
trie depth first, trying at each node a literal child (one dict hit), then typed
parameters, then ``str`` parameters, then ``path`` parameters, so the first match found
is the most specific one, and a dead end backtracks to the next candidate. A
parameter is converted on the edge that matched it: a converter refusing the text is a
dead end too. A ``path``
parameter tries its longest span first, but the span that ends the route last, so a
route going on after it (``/files/{p:path}/edit``) wins. Paths with no parameter at all
are also kept in a dict, so the common case is a single hit. The trie is built once,
lazily, on the first lookup after a change (a change to an included router counts), so
converters registered after a route still apply to it.

Routes also carry plain data for the dispatcher, which alone acts on it: the hooks of the
routers each is served through (resolved when a tree is built, so hooks registered later
count too) and the limits it sets. A class-based view's route answers the verbs its class
has methods for, each method's signature checked as a handler's is.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar
from urllib.parse import quote

from microasgi._concurrency import is_async_callable
from microasgi._hooks import NO_HOOKS, HookLists, Hooks, chain
from microasgi._types import ASGIApp, Scope
from microasgi.converters import (
    BUILTIN_CONVERTERS,
    Converter,
    FloatConverter,
    IntConverter,
    PathConverter,
    StringConverter,
    UUIDConverter,
)
from microasgi.datastructures import LimitOverrides, RouteLimits, limit_overrides

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "BUILTIN_CONVERTERS",
    "HTTP_METHODS",
    "Converter",
    "FloatConverter",
    "IntConverter",
    "Match",
    "Miss",
    "Mount",
    "NoMatchFound",
    "PathConverter",
    "Route",
    "Router",
    "StringConverter",
    "UUIDConverter",
    "WebSocketRoute",
    "route_path",
]

# The methods RFC 9110 defines; ``methods=`` takes any method token, these and others.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)
H = TypeVar("H", bound=Handler)


class NoMatchFound(LookupError):
    """``url_path_for`` found no route of that name, or the parameters did not fit."""


# Lookup order within a trie node: literal segment, then these kinds.
_TYPED, _STR, _PATH = 0, 1, 2
# How a pattern segment's text is tested: by its regex, or by what the regex amounts to.
_REGEX, _ANY_TEXT, _DIGITS = 0, 1, 2
_TESTS = {StringConverter.regex: _ANY_TEXT, IntConverter.regex: _DIGITS}

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_][A-Za-z0-9_]*))?}")
_BRACES = re.compile(r"[{}]")


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise ValueError(f"route paths must start with '/': {path!r}")


# --- compiled templates -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    converter: Converter


@dataclass(slots=True)
class _Segment:
    """One ``/``-separated piece of a template: literal text, or a pattern."""

    literal: str | None  # the text when the segment has no parameter
    regex: re.Pattern[str] | None = None
    params: tuple[_Param, ...] = ()
    kind: int = _TYPED
    key: str = ""  # segments with equal keys share a trie edge
    # The regex group of each parameter; empty when the parameter is the whole segment
    # (its value is then the segment's text, whatever groups its converter has).
    groups: tuple[int, ...] = ()
    # How the walk tests a segment's text when a string method says what the regex would:
    # any text (``[^/]+``, a plain ``str`` parameter) or ASCII digits (``[0-9]+``, ``int``).
    test: int = _REGEX
    # The whole-segment parameter's conversion (see _conversion).
    convert: Callable[[str], Any] | None = None


def _converter(name: str, registries: Iterable[dict[str, Converter]]) -> Converter:
    for registry in registries:
        if name in registry:
            return registry[name]
    raise LookupError(f"unknown path converter {name!r}")


def _compile_segment(text: str, registries: tuple[dict[str, Converter], ...]) -> _Segment:
    matches = list(_PARAM.finditer(text))
    if not matches:
        if _BRACES.search(text):
            raise ValueError(f"malformed path parameter in segment {text!r}")
        return _Segment(literal=text, key=text)
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        # The common case: the converter's regex alone, so its groups stay its own.
        param = _Param(matches[0].group(1), _converter(matches[0].group(2) or "str", registries))
        if isinstance(param.converter, PathConverter):
            kind = _PATH
        elif isinstance(param.converter, StringConverter):
            kind = _STR
        else:
            kind = _TYPED
        regex = _compile(param.converter.regex, text)
        # The walk converts a value on the edge it matched: routes share an edge only
        # when they share its converter, not just its regex.
        key = f"{kind}:{regex.pattern}:{id(param.converter)}"
        test = _TESTS.get(regex.pattern, _REGEX)
        convert = _conversion(param.converter)
        return _Segment(None, regex, (param,), kind, key, test=test, convert=convert)
    pattern, params, groups, end = [], [], [], 0
    for match in matches:
        literal = text[end : match.start()]
        if _BRACES.search(literal):
            raise ValueError(f"malformed path parameter in segment {text!r}")
        converter = _converter(match.group(2) or "str", registries)
        pattern.append(re.escape(literal))
        # The parameter's group is numbered after every group before it, converters' own too.
        groups.append(_compile("".join(pattern), text).groups + 1)
        pattern.append(f"({converter.regex})")
        params.append(_Param(match.group(1), converter))
        end = match.end()
    tail = text[end:]
    if _BRACES.search(tail):
        raise ValueError(f"malformed path parameter in segment {text!r}")
    pattern.append(re.escape(tail))
    regex = _compile("".join(pattern), text)
    key = f"{_TYPED}:{regex.pattern}:{[id(param.converter) for param in params]}"
    return _Segment(None, regex, tuple(params), _TYPED, key, tuple(groups))


def _conversion(converter: Converter) -> Callable[[str], Any]:
    """``converter.convert``, or for a built-in converter the builtin it amounts to: the
    walk calls it on every request with a parameter, and a builtin is the cheaper call."""
    return _BUILTIN_CONVERSIONS.get(type(converter)) or converter.convert


_BUILTIN_CONVERSIONS: dict[type, Callable[[str], Any]] = {
    IntConverter: int,  # the regex has let only ASCII digits through
    StringConverter: str,
    PathConverter: str,
}


def _compile(pattern: str, segment: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        # e.g. a converter with named groups twice in one segment, whose regexes are joined
        raise ValueError(f"path segment {segment!r} does not compile to a regex: {exc}") from None


def _split(path: str) -> list[str]:
    return path[1:].split("/")


# --- routes -------------------------------------------------------------------------


class BaseRoute:
    """What the router's tree holds: a path template with its converters."""

    path: str
    name: str | None
    endpoint: Handler
    methods: frozenset[str]  # the methods it answers
    registries: tuple[dict[str, Converter], ...]
    # the parameters' names, in order; set when a tree is built
    names: tuple[str, ...] = ()
    # what the handler gets before the path parameters, for error messages
    connection: ClassVar[str] = "request"
    # The routers it is served through, outermost first, and their hooks (set when a
    # tree is built): plain data, which the dispatcher reads and calls.
    routers: tuple[Router, ...] = ()
    hooks: Hooks = NO_HOOKS

    def compile(self) -> list[_Segment]:
        """Compile the template against the converters known now."""
        registries = (*self.registries, BUILTIN_CONVERTERS)
        segments = [_compile_segment(text, registries) for text in _split(self.path)]
        names = self.names = tuple(p.name for s in segments for p in s.params)
        if len(set(names)) != len(names):
            raise ValueError(f"a path parameter name appears twice in {self.path!r}")
        return segments

    def param_names(self) -> list[str]:
        """The names of the template's parameters, in order."""
        return [match.group(1) for match in _PARAM.finditer(self.path)]

    def check(self, prefix: str = "") -> None:
        """Refuse a handler that cannot take the parameters of ``prefix + path``.

        The handler is called as ``endpoint(connection, **params)``: a mismatch would
        otherwise fail every request, so it is an error at registration instead.
        """
        path = prefix + self.path
        names = [match.group(1) for match in _PARAM.finditer(path)]
        views = _view_handlers(self.endpoint)
        if views is None:
            _check_call(
                path, self.endpoint, _endpoint_name(self.endpoint), [self.connection], names
            )
            return
        for method, function in views.items():  # a class-based view: each of its methods
            name = f"{_endpoint_name(self.endpoint)}.{method.lower()}"
            _check_call(path, function, name, ["self", self.connection], names)

    def with_prefix(
        self: R, prefix: str, registries: tuple[dict[str, Converter], ...], router: Router
    ) -> R:
        """Return a copy of this route as ``router`` serves it: under ``prefix``, also
        seeing ``registries``, and with ``router``'s hooks."""
        route = copy.copy(self)
        route.path = prefix + self.path
        route.registries = (*self.registries, *registries)
        route.routers = (router, *self.routers)
        return route

    def url_path(self, params: dict[str, Any]) -> str:
        """Build this route's path from ``params`` (exactly its parameters)."""
        names = set(self.param_names())
        if names != set(params):
            missing = ", ".join(sorted(names - set(params))) or "-"
            extra = ", ".join(sorted(set(params) - names)) or "-"
            raise NoMatchFound(
                f"route {self.name!r} takes parameters {sorted(names)}: missing {missing}, "
                f"unexpected {extra}"
            )
        registries = (*self.registries, BUILTIN_CONVERTERS)

        def fill(match: re.Match[str]) -> str:
            converter = _converter(match.group(2) or "str", registries)
            try:
                text = converter.to_string(params[match.group(1)])
            except (TypeError, ValueError) as exc:
                raise NoMatchFound(
                    f"route {self.name!r}: bad value for {match.group(1)!r}: {exc}"
                ) from None
            return quote(text, safe="/" if isinstance(converter, PathConverter) else "")

        return _PARAM.sub(fill, self.path)


R = TypeVar("R", bound=BaseRoute)


def _check_call(
    path: str, function: Handler, name: str, leading: list[str], names: list[str]
) -> None:
    """Refuse ``function`` if it cannot be called as ``function(*leading, **params)``."""
    try:
        signature = inspect.signature(function)  # follows __wrapped__ and partial
    except (TypeError, ValueError):
        return  # some builtins have no signature to read: nothing to check
    try:
        signature.bind(*leading, **dict.fromkeys(names))
    except TypeError as exc:
        call = ", ".join([*leading, *(f"{param}=..." for param in names)])
        raise TypeError(
            f"route {path!r}: its handler cannot be called as {name}({call}): {exc}"
        ) from None


def _view_handlers(endpoint: Handler) -> dict[str, Handler] | None:
    """A class-based view's function per method (its ``method_handlers()``), or None."""
    if not isinstance(endpoint, type):
        return None
    handlers = getattr(endpoint, "method_handlers", None)
    return dict(handlers()) if callable(handlers) else None


# RFC 9110's token: what a method may be (PROPFIND, QUERY and methods not named yet).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _endpoint_name(endpoint: Handler) -> str:
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return str(getattr(endpoint, "__name__", type(endpoint).__name__))


def _methods(methods: Iterable[str] | None, path: str) -> frozenset[str]:
    if isinstance(methods, str):  # "GET" would be the methods G, E and T
        raise TypeError(f"route {path!r}: methods must be a list of names, such as ['GET']")
    wanted = set()
    for method in ["GET"] if methods is None else methods:
        if not isinstance(method, str) or not _TOKEN.fullmatch(method):
            raise ValueError(f"route {path!r}: {method!r} is not an HTTP method token")
        wanted.add(method.upper())
    if "GET" in wanted:
        wanted.add("HEAD")
    return frozenset(wanted)


class Route(BaseRoute):
    """An HTTP route: a path template, the methods it accepts and its handler."""

    kind: ClassVar[str] = "http"

    def __init__(
        self,
        path: str,
        endpoint: Handler,
        *,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        registries: tuple[dict[str, Converter], ...] = (),
        limits: LimitOverrides | None = None,
    ) -> None:
        _check_path(path)
        self.path = path
        self.endpoint = endpoint
        self.name = _endpoint_name(endpoint) if name is None else name
        self.registries = registries
        views = _view_handlers(endpoint)
        if views is None:
            self.methods = _methods(methods, path)
        else:  # a class-based view answers the methods it has functions for
            view = _endpoint_name(endpoint)
            if not views:
                raise TypeError(f"route {path!r}: {view} defines no method (get, post...)")
            self.methods = _methods(views if methods is None else methods, path)
            missing = self.methods - views.keys() - {"HEAD"}
            if missing:
                raise TypeError(
                    f"route {path!r}: {view} has no method for {', '.join(sorted(missing))}"
                )
        self.check()
        self.is_async = is_async_callable(endpoint)
        # The limits this route sets for its requests, over the App's (None: the App's).
        self.limits = limits

    def __repr__(self) -> str:
        return f"Route({self.path!r}, methods={sorted(self.methods)}, name={self.name!r})"


class WebSocketRoute(BaseRoute):
    """A WebSocket route: a path template and its handler."""

    kind: ClassVar[str] = "websocket"
    connection: ClassVar[str] = "websocket"
    # A connection opens with a GET handshake, and is looked up as one.
    methods: frozenset[str] = frozenset({"GET"})

    def __init__(
        self,
        path: str,
        endpoint: Handler,
        *,
        name: str | None = None,
        registries: tuple[dict[str, Converter], ...] = (),
    ) -> None:
        _check_path(path)
        if not is_async_callable(inspect.unwrap(endpoint)):  # a sync decorator's is fine
            raise TypeError(f"WebSocket handler {endpoint!r} must be an async function")
        self.path = path
        self.endpoint = endpoint
        self.name = _endpoint_name(endpoint) if name is None else name
        self.registries = registries
        self.check()

    def __repr__(self) -> str:
        return f"WebSocketRoute({self.path!r}, name={self.name!r})"


class Mount:
    """An ASGI app, or a Router, served under a literal path prefix."""

    # As for routes: the routers it is served through, and their hooks, which apply to
    # a mounted Router's routes (never to another ASGI app).
    routers: tuple[Router, ...] = ()
    hooks: Hooks = NO_HOOKS

    def __init__(self, path: str, app: ASGIApp | Router, *, name: str | None = None) -> None:
        _check_path(path)
        path = path.rstrip("/")
        if _BRACES.search(path):
            raise ValueError(f"mount prefixes are literal paths: {path!r}")
        self.path = path
        self.app = app
        self.name = name

    def child_scope(self, scope: Scope) -> Scope:
        """A shallow copy of ``scope`` for the mounted app: ``root_path`` gains the prefix."""
        child = dict(scope)
        child["root_path"] = scope.get("root_path", "") + self.path
        return child

    def url_path(self, name: str | None, params: dict[str, Any]) -> str:
        """Build a path into the mounted app: ``name`` is the child's route name or None."""
        if name is None:
            rest = params.pop("path", None) if set(params) <= {"path"} else None
            if rest is None or params:
                raise NoMatchFound(f"mount {self.name!r} takes one parameter, 'path'")
            return self.path + "/" + quote(str(rest).lstrip("/"), safe="/")
        finder = getattr(self.app, "url_path_for", None)
        if finder is None:
            raise NoMatchFound(f"mounted app {self.name!r} has no named routes")
        return self.path + str(finder(name, **params))

    def __repr__(self) -> str:
        return f"Mount({self.path!r}, {self.app!r}, name={self.name!r})"


AnyRoute = Route | WebSocketRoute


# --- the lookup tree ----------------------------------------------------------------


@dataclass(slots=True)
class _Edge:
    segment: _Segment
    node: _Node


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    patterns: list[_Edge] = field(default_factory=list)  # in lookup order
    routes: list[AnyRoute] = field(default_factory=list)
    mount: Mount | None = None
    # How many segments a path may still have below this node to match: a ``path``
    # parameter only tries the splits that leave such a rest (linear, not quadratic).
    min_rest: int = 0
    max_rest: float = 0

    def measure(self) -> None:
        """Set ``min_rest``/``max_rest`` here and below (after the tree is built)."""
        lows: list[int] = []
        highs: list[float] = []
        if self.routes:
            lows.append(0)
            highs.append(0)
        if self.mount is not None:
            lows.append(0)
            highs.append(math.inf)
        children = [(child, False) for child in self.literals.values()]
        children += [(edge.node, edge.segment.kind == _PATH) for edge in self.patterns]
        for child, is_path in children:
            child.measure()
            lows.append(1 + child.min_rest)
            highs.append(math.inf if is_path else 1 + child.max_rest)
        self.min_rest = min(lows, default=0)
        self.max_rest = max(highs, default=0)

    def child(self, segment: _Segment) -> _Node:
        if segment.literal is not None:
            return self.literals.setdefault(segment.literal, _Node())
        for edge in self.patterns:
            if edge.segment.key == segment.key:
                return edge.node
        node = _Node()
        self.patterns.append(_Edge(segment, node))
        # A stable sort keeps registration order within a kind.
        self.patterns.sort(key=lambda edge: edge.segment.kind)
        return node


# What a lookup found: the route with its converted parameters, or a mount (with none).
# A plain pair: a lookup with parameters makes one per request, and a class costs more.
Match: TypeAlias = tuple[AnyRoute | Mount, dict[str, Any]]


class _Tree:
    """A segment trie over one kind of route (http or websocket) and the mounts."""

    __slots__ = ("root", "static")

    def __init__(self, routes: Iterable[AnyRoute], mounts: Iterable[Mount]) -> None:
        self.root = _Node()
        # path -> method -> the decision for the first route for it, built once and
        # shared: a parameterless path is two dict hits (its users must not change it)
        self.static: dict[str, dict[str, Match]] = {}
        for route in routes:
            segments = route.compile()
            node = self.root
            for segment in segments:
                node = node.child(segment)
            node.routes.append(route)
            if all(segment.literal is not None for segment in segments):
                by_method = self.static.setdefault(route.path, {})
                for method in route.methods:
                    if method not in by_method:
                        by_method[method] = (route, {})
        for mount in mounts:
            node = self.root
            for text in _split(mount.path) if mount.path else ():
                node = node.literals.setdefault(text, _Node())
            if node.mount is None:
                node.mount = mount
        self.root.measure()

    def routes_path(self, path: str) -> bool:
        """Tell whether a route, not a mount, is the most specific match for ``path``."""
        if path in self.static:
            return True
        found = self.matches(path)
        return bool(found) and not isinstance(found[0][0], Mount)

    def matches(self, path: str) -> list[Match]:
        """Every match for ``path`` whatever its methods, most specific first."""
        every: list[Match] = []
        if path.startswith("/"):
            # The walk starts at 1: segments[0] is the empty text before the first slash.
            self.walk(self.root, path.split("/"), 1, [], "", every, None)
        return every

    def walk(
        self,
        node: _Node,
        segments: list[str],
        index: int,
        values: list[Any],
        method: str,
        every: list[Match] | None,
        allow: list[str] | None,
    ) -> Match | None:
        """Walk the trie from ``node``, ``segments[index]`` on (from the root: index 1).

        Depth first, most specific first: the first match accepting ``method``; or,
        given ``every``, collect all matches there. A dead end backtracks. ``values``
        holds the converted parameters of the edges taken so far. ``allow``, if given,
        gets the methods of the routes that match but do not accept ``method``.

        A node's last way on (nothing else to try there, no mount to fall back to) is
        taken in this call's loop rather than a call of its own: the common path, one
        literal or parameter after another, is then walked in a single call.
        """
        total = len(segments)
        while index < total:
            text = segments[index]
            edges = node.patterns
            mark = len(values)  # what a failed way on leaves is dropped from here
            child = node.literals.get(text)
            if child is not None:
                if not edges and node.mount is None:
                    node, index = child, index + 1
                    continue
                found = self.walk(child, segments, index + 1, values, method, every, allow)
                if found is not None:
                    return found
                del values[mark:]
            last: _Node | None = None  # the last way on, when it is taken here
            for edge in edges:
                segment = edge.segment
                if segment.kind == _PATH:
                    found = self._path_spans(edge, segments, index, values, method, every, allow)
                    if found is not None:
                        return found
                    del values[mark:]
                    continue
                test = segment.test
                hit = None
                if test == _DIGITS:
                    if not (text.isdigit() and text.isascii()):
                        continue
                elif test == _ANY_TEXT:
                    if not text:
                        continue
                else:
                    assert segment.regex is not None
                    hit = segment.regex.fullmatch(text)
                    if hit is None:
                        continue
                try:
                    if segment.convert is not None:  # the parameter is the whole segment
                        values.append(segment.convert(text))
                    else:  # parameters in a segment with text around them: regex groups
                        assert hit is not None
                        values += [
                            param.converter.convert(hit.group(group))
                            for param, group in zip(segment.params, segment.groups)  # noqa: B905
                        ]
                except ValueError:  # the converter refused what its regex let through
                    continue
                if edge is edges[-1] and node.mount is None:
                    last = edge.node
                    break
                found = self.walk(edge.node, segments, index + 1, values, method, every, allow)
                if found is not None:
                    return found
                del values[mark:]
            if last is None:
                break  # every way on failed: this node's mount, if any, is what is left
            node, index = last, index + 1
        else:  # the path ends at this node
            for route in node.routes:
                if every is None and method not in route.methods:
                    if allow is not None and isinstance(route, Route):
                        allow.extend(route.methods)
                    continue
                names = route.names
                # One parameter is the common case: a dict made without zip's iteration.
                params = {names[0]: values[0]} if len(names) == 1 else dict(zip(names, values))  # noqa: B905
                if every is None:
                    return (route, params)
                every.append((route, params))
        if node.mount is not None:
            if every is None:
                return (node.mount, {})
            every.append((node.mount, {}))
        return None

    def _path_spans(
        self,
        edge: _Edge,
        segments: list[str],
        index: int,
        values: list[Any],
        method: str,
        every: list[Match] | None,
        allow: list[str] | None,
    ) -> Match | None:
        """Walk on through a ``path`` parameter's edge from ``segments[index]``.

        Greedy like the regex ``.*``: the longest span first, among those leaving a rest
        the subtree can match; but the span that ends the route comes last, so
        ``/f/{p:path}/edit`` beats ``/f/{p:path}``.
        """
        child = edge.node
        total = len(segments)
        low = max(index + 1, total - int(min(child.max_rest, total)))
        ends = child.min_rest == 0  # a route may end right after it
        convert = edge.segment.convert
        assert convert is not None
        mark = len(values)
        for stop in range(total - (child.min_rest or 1), low - 1 - ends, -1):
            if stop < low:  # every span leaving a rest was tried
                stop = total
            try:
                values.append(convert("/".join(segments[index:stop])))
            except ValueError:
                continue
            found = self.walk(child, segments, stop, values, method, every, allow)
            if found is not None:
                return found
            del values[mark:]
        return None


# --- the router ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Miss:
    """A lookup that found nothing to call: why, for the 404, 405 or redirect."""

    allow: frozenset[str] = frozenset()  # methods of the path, when no route accepted
    redirect: str | None = None  # the other-slash path, when it would match


_NOT_FOUND = Miss()


@dataclass(frozen=True, slots=True)
class _Include:
    """A router included in another, under a prefix: its place in the includer's order."""

    prefix: str
    router: Router


@dataclass(slots=True)
class _Table:
    """Everything a router serves, included routers' routes and mounts prefixed."""

    routes: list[AnyRoute]
    mounts: list[Mount]
    names: dict[str, AnyRoute]


class Router:
    """Holds routes and mounts, and finds the one for a request.

    An included router stays live: what it is given later is served too. Every change
    forgets what was built from the routes, here and in the routers including this one
    (they are few, and changes happen at registration), so a request only ever finds
    the tree built and reuses it.
    """

    def __init__(self, *, redirect_slashes: bool = True) -> None:
        self.converters: dict[str, Converter] = {}
        self.redirect_slashes = redirect_slashes
        self._entries: list[AnyRoute | Mount | _Include] = []  # in registration order
        self._includers: list[tuple[Router, str]] = []  # who includes this one, and where
        self._table: _Table | None = None
        self._trees: dict[str, _Tree] | None = None
        self.hook_lists = HookLists()  # the hooks registered here, in order
        self._hooks: Hooks | None = None

    # registration

    def register_converter(self, name: str, converter: Converter) -> None:
        """Make ``{param:name}`` available to this router's routes (present and future)."""
        self.converters[name] = converter
        self._changed()

    def add_route(
        self,
        path: str,
        endpoint: Handler,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        **limits: Unpack[RouteLimits],
    ) -> Route:
        """Register an HTTP handler (a function or an ``HTTPEndpoint`` class) for ``path``;
        ``limits`` (``max_body_size=`` ...) override the App's for its requests."""
        route = Route(
            path,
            endpoint,
            methods=methods,
            name=name,
            registries=(self.converters,),
            limits=limit_overrides(f"route {path!r}", dict(limits)),
        )
        self._add(route)
        return route

    def add_websocket_route(self, path: str, endpoint: Handler, name: str | None = None) -> None:
        """Register a WebSocket handler for ``path``."""
        self._add(WebSocketRoute(path, endpoint, name=name, registries=(self.converters,)))

    def _add(self, entry: AnyRoute | Mount) -> None:
        _check_under(self._prefixes(), [entry])
        entry.routers = (self,)
        self._entries.append(entry)
        self._changed()

    def _changed(self) -> None:
        """Forget what was built from the routes, here and in every includer."""
        self._table = None
        self._trees = None
        self._hooks = None
        for includer, _ in self._includers:
            includer._changed()

    def _prefixes(self) -> Iterator[str]:
        """Every prefix the routers including this one serve its routes under."""
        for includer, prefix in self._includers:
            yield prefix
            for outer in includer._prefixes():
                yield outer + prefix

    def _reaches(self, router: Router) -> bool:
        """Tell whether ``router`` is this router or included in it, at any depth."""
        return router is self or any(
            entry.router._reaches(router) for entry in self._entries if isinstance(entry, _Include)
        )

    def route(
        self,
        path: str,
        methods: Iterable[str] | None = None,
        name: str | None = None,
        **limits: Unpack[RouteLimits],
    ) -> Callable[[F], F]:
        """Decorate a handler (or an ``HTTPEndpoint`` class) for ``path`` and ``methods``
        (default GET, HEAD implied; a view's: those it defines)."""

        def decorator(endpoint: F) -> F:
            self.add_route(path, endpoint, methods, name, **limits)
            return endpoint

        return decorator

    def get(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a GET (and HEAD) handler."""
        return self.route(path, ["GET"], name, **limits)

    def post(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a POST handler."""
        return self.route(path, ["POST"], name, **limits)

    def put(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a PUT handler."""
        return self.route(path, ["PUT"], name, **limits)

    def patch(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a PATCH handler."""
        return self.route(path, ["PATCH"], name, **limits)

    def delete(
        self, path: str, name: str | None = None, **limits: Unpack[RouteLimits]
    ) -> Callable[[F], F]:
        """Decorate a DELETE handler."""
        return self.route(path, ["DELETE"], name, **limits)

    def websocket(self, path: str, name: str | None = None) -> Callable[[F], F]:
        """Decorate a WebSocket handler for ``path``."""

        def decorator(endpoint: F) -> F:
            self.add_websocket_route(path, endpoint, name=name)
            return endpoint

        return decorator

    def mount(self, path: str, app: ASGIApp | Router, name: str | None = None) -> None:
        """Serve the ASGI app ``app`` (or a Router, as part of the app) under ``path``."""
        self._add(Mount(path, app, name=name))

    # hooks

    def before_request(self, hook: H) -> H:
        """Run ``hook(request)`` before each handler of this router's routes, wherever they
        are served; a value it returns (or an ``HTTPException``) answers the request."""
        self.hook_lists.before_request.append(hook)
        self._changed()
        return hook

    def after_request(self, hook: H) -> H:
        """Run ``hook(request, response)`` on each response of this router's routes; it
        returns the response, changed or replaced."""
        self.hook_lists.after_request.append(hook)
        self._changed()
        return hook

    def before_websocket(self, hook: H) -> H:
        """Run ``hook(websocket)`` before each WebSocket handler of this router's routes;
        an ``HTTPException`` (or a value it returns) denies the connection."""
        self.hook_lists.before_websocket.append(hook)
        self._changed()
        return hook

    @property
    def hooks(self) -> Hooks:
        """This router's own hooks, resolved (those of a request none of its routes match)."""
        hooks = self._hooks
        if hooks is None:
            hooks = self._hooks = chain([self.hook_lists])
        return hooks

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Serve ``router``'s routes and mounts here under ``prefix``, later ones too.

        They take the place of this call in the matching order (for ties).
        """
        prefix = prefix.rstrip("/")
        if prefix:
            _check_path(prefix)
        if router._reaches(self):
            raise ValueError("a router cannot include itself, directly or through another")
        table = router._tabled()
        prefixes = [outer + prefix for outer in ("", *self._prefixes())]
        _check_under(prefixes, [*table.routes, *table.mounts])
        self._entries.append(_Include(prefix, router))
        router._includers.append((self, prefix))
        self._changed()

    # lookup

    @property
    def routes(self) -> list[AnyRoute]:
        """Every route served here, included routers' under their prefix, in order."""
        return self._tabled().routes

    @property
    def mounts(self) -> list[Mount]:
        """Every mount served here, included routers' under their prefix, in order."""
        return self._tabled().mounts

    def _tabled(self) -> _Table:
        table = self._table
        if table is None:
            table = self._table = self._flatten()
        return table

    def _flatten(self) -> _Table:
        routes: list[AnyRoute] = []
        mounts: list[Mount] = []
        for entry in self._entries:
            if isinstance(entry, Mount):
                mounts.append(entry)
            elif isinstance(entry, _Include):
                inner = entry.router._tabled()
                registries = (self.converters,)
                routes.extend(
                    route.with_prefix(entry.prefix, registries, self) for route in inner.routes
                )
                mounts.extend(_prefixed(mount, entry.prefix, self) for mount in inner.mounts)
            else:
                routes.append(entry)
        names: dict[str, AnyRoute] = {}
        for route in routes:
            if route.name is not None:
                names.setdefault(route.name, route)
        return _Table(routes, mounts, names)

    def _build(self) -> dict[str, _Tree]:
        routes, mounts = self.routes, self.mounts
        # Each route's hooks, resolved once here: a request only reads them.
        for entry in (*routes, *mounts):
            entry.hooks = chain(router.hook_lists for router in entry.routers)
        http = [r for r in routes if isinstance(r, Route)]
        ws = [r for r in routes if isinstance(r, WebSocketRoute)]
        self._trees = {"http": _Tree(http, mounts), "websocket": _Tree(ws, mounts)}
        return self._trees

    def prepare(self) -> None:
        """Compile the lookup trees now, mounted Routers' too (raises on an unknown
        converter)."""
        self._build()
        for mount in self.mounts:
            if isinstance(mount.app, Router):
                mount.app.prepare()

    def lookup(self, kind: str, path: str, method: str = "GET") -> Match | Miss:
        """Decide, once, what answers ``path``: a route with its parameters or a mount
        (a Match pair), or why nothing does (a Miss: a 405, a redirect, or 404)."""
        tree = (self._trees or self._build())[kind]
        static = tree.static.get(path)
        if static is not None and (found := static.get(method)) is not None:
            return found
        allow: list[str] = []
        if path.startswith("/"):
            # One walk decides the match and, failing that, the methods for a 405.
            match = tree.walk(tree.root, path.split("/"), 1, [], method, None, allow)
            if match is not None:
                return match
        if allow:
            return Miss(allow=frozenset(allow))
        if self.redirect_slashes and path != "/" and path.startswith("/"):
            # Whatever the method: the other path then answers it, with a 405 if need be.
            other = path[:-1] if path.endswith("/") else path + "/"
            if tree.routes_path(other):
                return Miss(redirect=other)
        return _NOT_FOUND

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name`` (``"mount:route"`` reaches into mounts)."""
        route = self._tabled().names.get(name)
        if route is not None:
            return route.url_path(params)
        mount_name, _, rest = name.partition(":")
        for mount in self.mounts:
            if mount.name == mount_name:
                return mount.url_path(rest or None, dict(params))
        raise NoMatchFound(f"no route named {name!r}")

    def __iter__(self) -> Iterator[AnyRoute | Mount]:
        yield from self.routes
        yield from self.mounts


def _prefixed(mount: Mount, prefix: str, router: Router | None = None) -> Mount:
    prefixed = Mount(prefix + mount.path or "/", mount.app, name=mount.name)
    if router is not None:
        prefixed.routers = (router, *mount.routers)
    return prefixed


def _check_under(prefixes: Iterable[str], entries: Iterable[AnyRoute | Mount]) -> None:
    """Refuse entries that would break when served under one of ``prefixes``: a handler
    not taking a prefix's parameters, or a mount under a prefix with parameters.
    """
    with_params = [prefix for prefix in prefixes if _BRACES.search(prefix)]
    for entry in entries if with_params else ():
        for prefix in with_params:
            if isinstance(entry, Mount):
                _prefixed(entry, prefix)
            else:
                entry.check(prefix)


def route_path(scope: Scope) -> str:
    """The path to route on: ``path`` minus ``root_path`` (``/`` when they are equal)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path) :] or "/"
    return path
