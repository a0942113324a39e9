"""Fuzz: hypothesis invents arguments for every tool, from its published input schema plus hostile values.

Whatever comes in (huge strings, negative and huge ids, wrong types, odd unicode, nulls, unknown
keys), a tool answers with a result, a validation error naming the field, or an API error. Never
an internal error (the SDK's bare "Error executing tool ..."), never a crash, never a sandbox bug
(a 500 the sandbox logs as its own failure), and never an error log line from the server.

The examples are derandomized so CI sees the same ones every run; their number per tool is small
enough for the whole file to take seconds.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote as quote_uri

import anyio.from_thread
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, ResourceTemplateReference

from astravue_mcp.api import models
from astravue_mcp.api.endpoints import ENDPOINTS
from astravue_mcp.tools.registry import load_specs
from tests.support import sandbox_client

TOOLS = list(load_specs())
EXAMPLES = 30

HUGE = 10**30
HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            " ",
            "x" * 100_000,
            "\x00",
            "\u202etxt.exe",
            "💥" * 600,
            "Ω≈ç√∫˜µ≤≥÷",
            "' OR 1=1 --",
            "<script>alert(1)</script>",
            "../../etc/passwd",
            "{{7*7}}",
            -1,
            0,
            -(2**63),
            2**63,
            HUGE,
            -HUGE,
            1.5,
            float("inf"),
            float("nan"),
            True,
            False,
            [],
            {},
            [None],
            {"id": 1},
            list(range(10_000)),
            "2026-13-45T99:99:99Z",
            "9999-12-31",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00-14:00",
            "1_0",
            "²",
            "٣",
            "9" * 5000,
            1.0,
        ]
    ),
    st.text(max_size=50),
    st.integers(),
    st.lists(st.integers(), max_size=300),
)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that a model reading the published schema might plausibly send (mostly valid)."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, defs) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        low = schema.get("minimum", (schema.get("exclusiveMinimum", -1000) + 1) if "exclusiveMinimum" in schema else 1)
        high = schema.get("maximum", max(low, 0) + 100)
        # Small ids exist in the seed: bias towards them so plausible calls get past the API too.
        return st.one_of(st.integers(min_value=low, max_value=min(high, low + 5)), st.integers(low, high))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return st.floats(min_value=low, max_value=schema.get("maximum", 1000), allow_nan=False, exclude_min=True)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        longest = min(schema.get("maxLength", 60), 60)
        if schema.get("format") == "date":
            return st.dates().map(str)
        return st.one_of(
            st.text(min_size=1, max_size=longest),
            st.sampled_from(["To do", "Done", "High", "2026-05-01", "2026-05-01T09:30:00+02:00", "title"]),
            st.datetimes().map(lambda d: d.isoformat()),
        )
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {}), defs),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 5), 5),
        )
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in properties.items() if k not in required},
        )
    return st.one_of(st.none(), st.integers(), st.text(max_size=10))


def arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-shaped arguments, sometimes spoilt: hostile values, missing fields, unknown keys."""
    defs = schema.get("$defs", {})
    plausible = from_schema(schema, defs)
    names = sorted(schema.get("properties", {})) or ["id"]

    @st.composite
    def spoilt(draw: st.DrawFn) -> dict[str, Any]:
        args = dict(draw(plausible))
        for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
            args[name] = draw(HOSTILE)
        if draw(st.booleans()):
            args.pop(draw(st.sampled_from(names)), None)
        if draw(st.integers(0, 4)) == 0:
            args[draw(st.sampled_from(["__proto__", "spaceId", "extra", "ctx", "x" * 300]))] = draw(HOSTILE)
        return args

    return st.one_of(plausible, plausible, spoilt())


class ErrorLog(logging.Handler):
    """Every ERROR record anywhere (SDK, server, sandbox) while the fuzz runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[tuple[Any, Client, dict[str, dict[str, Any]], ErrorLog]]:
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        with (
            anyio.from_thread.start_blocking_portal() as portal,
            portal.wrap_async_context_manager(sandbox_client(toolsets="all", rate_limit=100_000)) as client,
        ):
            listed = portal.call(client.list_tools)
            schemas = {t.name: t.input_schema for t in listed.tools}
            yield portal, client, schemas, errors
    finally:
        logging.getLogger().removeHandler(errors)


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_survives_invented_arguments(tool: str, fuzz_client: tuple[Any, Client, dict, ErrorLog]) -> None:
    portal, client, schemas, errors = fuzz_client
    seen = {"ok": 0, "invalid": 0, "api": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(args=arguments(schemas[tool]))
    def check(args: dict[str, Any]) -> None:
        errors.records.clear()
        result = portal.call(_call_bounded, client, tool, args)
        text = result.content[0].text if result.content else ""
        if result.is_error:
            assert text, f"{tool}{args!r:.300}: empty error"
            assert not text.startswith("Error executing tool"), f"{tool}({args!r:.300}): internal error"
            assert "Traceback" not in text and "Internal sandbox error" not in text, text
            assert result.structured_content is None
            seen["invalid" if text.startswith("Invalid arguments") else "api"] += 1
        else:
            assert isinstance(result.structured_content, dict), text
            seen["ok"] += 1
        assert errors.records == [], f"{tool}({args!r:.300}) logged errors: {errors.records}"

    check()
    # Every tool met both kinds of input: plausible ones that got past validation, and rejected ones.
    assert seen["invalid"] > 0
    assert seen["ok"] + seen["api"] > 0


async def _call_bounded(client: Client, tool: str, args: dict[str, Any]) -> Any:
    with anyio.fail_after(20):
        return await client.call_tool(tool, args)


@pytest.mark.parametrize(
    ("tool", "args", "text"),
    [
        (
            "astravue_create_space",
            {"name": "x" * 501},
            "Invalid arguments for astravue_create_space: name: String should have at most 500 characters.",
        ),
        (
            "astravue_bulk_delete_tasks",
            {"space_id": 1, "project_id": 1, "task_ids": list(range(1, 102))},
            "Invalid arguments for astravue_bulk_delete_tasks: task_ids: List should have at most 100 items after "
            "validation, not 101.",
        ),
        (
            "astravue_list_spaces",
            {"limit": 201},
            "Invalid arguments for astravue_list_spaces: limit: Input should be less than or equal to 200.",
        ),
        (
            "astravue_get_space",
            {"space_id": 1, "spaceId": 1},
            "Invalid arguments for astravue_get_space: unknown spaceId; allowed: space_id.",
        ),
    ],
    ids=["long string", "long list", "big limit", "unknown key"],
)
def test_limits_are_named(
    tool: str, args: dict[str, Any], text: str, fuzz_client: tuple[Any, Client, dict, ErrorLog]
) -> None:
    portal, client, _, _ = fuzz_client
    result = portal.call(_call_bounded, client, tool, args)
    assert result.is_error and result.content[0].text == text


# ---------------------------------------------------------------- the sandbox itself
WRITES = sorted(name for name, endpoint in ENDPOINTS.items() if endpoint.method != "GET")
WIRE_SCHEMAS = [
    model.model_json_schema(by_alias=True).get("properties", {})
    for model in vars(models).values()
    if isinstance(model, type) and issubclass(model, models.Wire) and model is not models.Wire
]
WIRE_FIELDS = sorted({name for properties in WIRE_SCHEMAS for name in properties})
MOMENT_FIELDS = sorted({name for properties in WIRE_SCHEMAS for name, p in properties.items() if "date-time" in str(p)})
EDGE_MOMENTS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01", "9999-12-31", "2024-02-30"]


@pytest.fixture(scope="module")
def sandbox_portal() -> Iterator[tuple[Any, httpx2.AsyncClient, ErrorLog]]:
    from astravue_mcp.config import SANDBOX_ORG_ID, SANDBOX_TOKEN
    from astravue_mcp.sandbox import create_app

    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Org-Id": str(SANDBOX_ORG_ID)}
    api = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=create_app()), base_url="http://sb", headers=headers)
    try:
        with anyio.from_thread.start_blocking_portal() as portal, portal.wrap_async_context_manager(api):
            yield portal, api, errors
    finally:
        logging.getLogger().removeHandler(errors)


@pytest.mark.parametrize("operation", WRITES)
def test_the_sandbox_answers_odd_writes_without_a_500(
    operation: str, sandbox_portal: tuple[Any, httpx2.AsyncClient, ErrorLog]
) -> None:
    """Pinned bug: 27 writes with a date-time at the edge of the range made the sandbox answer 500."""
    portal, api, errors = sandbox_portal
    endpoint = ENDPOINTS[operation]
    value = st.one_of(HOSTILE, st.sampled_from(EDGE_MOMENTS))
    fields = st.dictionaries(st.sampled_from(WIRE_FIELDS), value, min_size=1, max_size=5)
    moments = st.dictionaries(st.sampled_from(MOMENT_FIELDS), st.sampled_from(EDGE_MOMENTS), max_size=2)
    body = st.one_of(st.tuples(fields, moments).map(lambda pair: pair[0] | pair[1]), HOSTILE)

    ids = st.fixed_dictionaries({k: st.sampled_from([1, 2, 61]) for k in re.findall(r"{(\w+)}", endpoint.path)})

    @settings(max_examples=15, deadline=None, derandomize=True, database=None)
    @given(ids=ids, body=body)
    def check(ids: dict[str, int], body: Any) -> None:
        errors.records.clear()
        answer = portal.call(lambda: api.request(endpoint.method, endpoint.url(**ids), content=json.dumps(body)))
        assert answer.status_code < 500, f"{operation} {body!r:.300}: {answer.text:.300}"
        assert errors.records == []
        portal.call(api.post, "/_sandbox/reset")

    check()


# ---------------------------------------------------------------- ids, resource URIs, completion
@pytest.mark.parametrize(
    "odd", [True, "1_0", 1.0, "1", "²", 10**5000], ids=["true", "1_0", "1.0", "str", "sup2", "huge"]
)
def test_ids_are_strict_integers(odd: Any, fuzz_client: tuple[Any, Client, dict, ErrorLog]) -> None:
    """Pinned bug: `task_id: true` deleted task 1 and "1_0" was task 10."""
    portal, client, _, _ = fuzz_client
    result = portal.call(
        _call_bounded, client, "astravue_delete_task", {"task_id": odd, "space_id": 1, "project_id": 1}
    )
    assert result.is_error and result.content[0].text.startswith(
        "Invalid arguments for astravue_delete_task: task_id: "
    )
    # Refused while validating the arguments, before any request: nothing was deleted.


ODD_TAILS = st.one_of(
    st.sampled_from(["²", "٣", "1_0", "0", "-1", "1.0", "9" * 4301, "9" * 19, "%00", "%E2%80%AE1", " 1", "1/../2", ""]),
    st.text(max_size=20).map(quote_uri),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
TEMPLATES = ["astravue://tasks/{}", "astravue://spaces/{}/projects", "astravue://spaces/1/projects/{}"]


def test_resource_uris_with_odd_ids_are_answered_not_crashed(fuzz_client: tuple[Any, Client, dict, ErrorLog]) -> None:
    portal, client, _, errors = fuzz_client

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(template=st.sampled_from(TEMPLATES), tail=ODD_TAILS)
    def check(template: str, tail: str) -> None:
        errors.records.clear()
        try:
            portal.call(_read_bounded, client, template.format(tail))
        except MCPError as exc:
            assert (
                exc.error.code != INTERNAL_ERROR
                or "must be a positive integer" in exc.error.message
                or ("not found" in exc.error.message or "was not found" in exc.error.message)
            ), exc.error.message
            assert "Traceback" not in exc.error.message
        assert errors.records == []

    check()


def test_completion_of_odd_values_is_answered_not_crashed(fuzz_client: tuple[Any, Client, dict, ErrorLog]) -> None:
    portal, client, _, errors = fuzz_client

    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(
        name=st.sampled_from(["space_id", "project_id", "task_id"]),
        value=ODD_TAILS,
        known=st.dictionaries(st.sampled_from(["space_id", "project_id"]), ODD_TAILS, max_size=2),
    )
    def check(name: str, value: str, known: dict[str, str]) -> None:
        errors.records.clear()
        ref = ResourceTemplateReference(type="ref/resource", uri="astravue://spaces/{space_id}/projects/{project_id}")
        result = portal.call(_complete_bounded, client, ref, name, value, known)
        assert all(v.isascii() and v.isdigit() for v in result.completion.values)
        assert errors.records == []

    check()


async def _read_bounded(client: Client, uri: str) -> Any:
    with anyio.fail_after(20):
        return await client.read_resource(uri)


async def _complete_bounded(client: Client, ref: Any, name: str, value: str, known: dict[str, str]) -> Any:
    with anyio.fail_after(20):
        return await client.complete(ref, {"name": name, "value": value}, known or None)
