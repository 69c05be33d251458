"""The work every GraphQL request does around its resolvers, as one schema extension:

- parse with the token limit and validate with the depth, alias (and, when switched off,
  introspection) rules, both remembered per document text, so a repeated document costs a dictionary
  lookup; validation errors are marked GRAPHQL_VALIDATION_FAILED, and without introspection they
  leave out graphql-core's "Did you mean ...?" suggestions, which would tell the schema's names;
- refuse the caller before any resolver when AuthGate says so (app/graphql/auth_gate.py);
- afterwards, hand the result to the observers (the Prometheus counters of app/metrics.py);
- give each result streamed over WebSocket its errors' codes, as HTTP answers get them in
  `GraphQLApp.process_result` (app/main.py).

Strawberry's MaxTokensLimiter, ParserCache, QueryDepthLimiter, MaxAliasesLimiter, ValidationCache and
DisableIntrospection do the same as separate extensions; every extension adds hook calls to every
request (about 40 us of a presign's CPU for the six, bench/presign.py), and ValidationCache keys its
cache by the parsed document, which it hashes node by node on every request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from graphql import ASTValidationRule, DocumentNode, GraphQLError, parse, validate
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionContext
from strawberry.types.execution import ExecutionResult

from app.graphql.auth_gate import refuse_unauthorised
from app.graphql.errors import VALIDATION

# Documents longer than this are parsed and validated every time: real ones are a few KiB, and a
# bound keeps a flood of huge unique documents from filling memory through the cache.
MAX_CACHED_DOCUMENT = 16_384


@dataclass
class _Entry:
    document: DocumentNode
    errors: list[GraphQLError] | None = None  # None: not validated yet


class DocumentCache:
    """Query text -> its parsed document and validation errors, least recently used first out."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, query: str) -> _Entry | None:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def put(self, query: str, entry: _Entry) -> None:
        if len(query) > MAX_CACHED_DOCUMENT:
            return
        self._entries[query] = entry
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)


def limit_rules(*, max_depth: int, max_aliases: int, introspection: bool) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules of our limits, built once: Strawberry's limiters make their rule classes in
    __init__ (and a rule class made per request would also defeat any cache keyed by the rules)."""
    rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # The rules Strawberry's own validate_document adds to graphql-core's.
    return (MaybeNullValidationRule, OneOfInputValidationRule, *rules)


class RequestPipeline(SchemaExtension):
    def __init__(
        self,
        *,
        cache: DocumentCache,
        max_tokens: int,
        rules: tuple[type[ASTValidationRule], ...],
        hide_suggestions: bool = False,
        observers: Sequence[Callable[[ExecutionContext], None]] = (),
        convert: Callable[[GraphQLError], GraphQLError] | None = None,
    ) -> None:
        self.cache = cache
        self.convert = convert
        self.max_tokens = max_tokens
        self.rules = rules
        self.hide_suggestions = hide_suggestions
        self.observers = observers
        self._entry: _Entry | None = None

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        query = ctx.query or ""
        entry = self.cache.get(query)
        if entry is None:
            try:
                entry = _Entry(parse(query, max_tokens=self.max_tokens))
            except GraphQLError:
                # Strawberry parses it again, under the same limit, where a syntax error (or too many
                # tokens) becomes the operation's parse failure: for a streamed operation too,
                # whose runner does not catch what a parsing hook raises.
                ctx.parse_options["max_tokens"] = self.max_tokens
                yield
                return
            self.cache.put(query, entry)
        self._entry = entry
        ctx.graphql_document = entry.document
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        entry = self._entry
        assert entry is not None and ctx.graphql_document is entry.document
        if entry.errors is None:
            entry.errors = validate(
                ctx.schema._schema,
                entry.document,
                (*ctx.validation_rules, *self.rules),
                hide_suggestions=self.hide_suggestions,
            )
            for error in entry.errors:
                error.extensions = {**(error.extensions or {}), **VALIDATION}
        # Set before Strawberry's own validation step, which then does nothing (a copy: the cached
        # list stays as it is whatever happens to this request's).
        ctx.pre_execution_errors = list(entry.errors)
        yield

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        refuse_unauthorised(ctx)
        yield
        for observe in self.observers:
            observe(ctx)

    def on_stream_result(self, result: object) -> Iterator[None]:
        if self.convert is not None and isinstance(result, ExecutionResult) and result.errors:
            result.errors = [self.convert(error) for error in result.errors]
        yield
