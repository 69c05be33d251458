"""Who may run what over GraphQL once the caller is known (see app/auth.py).

- A bad token fails the whole request with UNAUTHENTICATED, query or mutation: a client that sends
  credentials wants to know they are wrong, not to be served as anonymous.
- With auth on, anonymous callers may read (records, tables; private files resolve to a null URL)
  but every mutation needs a token. In anonymous mode everyone may do everything.
"""

from __future__ import annotations

from graphql import ExecutionResult, GraphQLError
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.errors import Unauthenticated


def refuse_unauthorised(execution_context: ExecutionContext) -> None:
    """Called before execution (app/graphql/pipeline.py): fail the request if the caller may not run it."""
    ctx = execution_context.context
    error = getattr(ctx, "auth_error", None)
    if error is None and getattr(ctx, "auth_required", False) and ctx.caller.subject is None:
        if execution_context.operation_type == OperationType.MUTATION:
            error = Unauthenticated("this operation needs a token: send 'Authorization: Bearer <jwt>'")
    if error is not None:
        # A result set before execution makes Strawberry skip the resolvers entirely.
        refusal = GraphQLError(error.message, original_error=error)
        execution_context.result = ExecutionResult(data=None, errors=[refusal])
