"""The GraphQL error hook: every error of an executed (or refused) operation leaves with
`extensions.code`, as Apollo clients expect. Statuses and the other transport's shape are in
app/http_errors.py; the codes are app/errors.py's."""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSyntaxError

from app.errors import BadUserInput, GraphQLParseFailed, GraphQLValidationFailed
from app.http_errors import expected, unexpected

# Set on validation errors by the request pipeline (app/graphql/pipeline.py), which knows them for
# what they are; any other error without an original exception is about the request's variables.
VALIDATION = {"code": GraphQLValidationFailed.code}


def _with_code(error: GraphQLError, message: str, code: str, original: Exception | None) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions={**(error.extensions or {}), "code": code},
    )


def convert_error(error: GraphQLError, *, debug: bool) -> GraphQLError:
    """The error as the client sees it. Unexpected exceptions are logged with their traceback and
    masked unless in debug mode."""
    original = error.original_error
    where = ".".join(map(str, error.path or []))
    if original is not None and not isinstance(original, GraphQLError):
        known = expected(original, where)
        if known is not None:
            return _with_code(error, known.message, known.code, known)
    if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
        return _with_code(error, error.message, GraphQLParseFailed.code, None)
    if isinstance(original, (ValueError, TypeError)) and not error.path:
        # A custom scalar (BigInt, HashObject) refused a literal (during validation) or a variable.
        return _with_code(error, error.message, BadUserInput.code, None)
    if error.extensions and error.extensions.get("code") == GraphQLValidationFailed.code:
        return _with_code(error, error.message, GraphQLValidationFailed.code, None)
    if original is None or isinstance(original, GraphQLError):
        # Variables that do not fit their types, arguments refused during execution.
        return _with_code(error, error.message, BadUserInput.code, None)
    internal = unexpected(original, debug=debug, where=where)
    return _with_code(error, internal.message, internal.code, original if debug else None)
