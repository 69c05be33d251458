"""Pure: who may read and write the records of each table, from the `access` of its YAML
(app/tables.py), for one caller.

With auth on:
- read `public`: every caller, anonymous ones included; `authenticated`: callers with a valid token;
  `owner`: the caller whose token's `sub` is the record's user_id (a record without one is nobody's).
- write `authenticated`: a caller with a token creates records, and changes or deletes every record it
  can read; `owner`: a caller with a token creates records (they are its own), and changes or deletes
  only its own.
- A record the caller may not read does not exist for it: lists, counts and related records leave it
  out, record(id:) answers null, record_update and record_delete RECORD_NOT_FOUND, exactly as for an
  id nobody has. A query that could only return tables the caller may not read is refused with
  UNAUTHENTICATED (a token would help); that answer depends on the tables' rules, never on what is
  stored.

Anonymous mode (no auth settings) has no identities, so the rules that need one cannot hold, and the
server says so at start-up (`Access.notes`). ANONYMOUS_READS decides what happens instead:
- `public` (the default): tables with `read: authenticated` or `owner` are read by nobody (as above;
  a query restricted to them answers FORBIDDEN, since no token can help), and private files resolve
  for nobody but the caller that saved them, in the answer that saved them;
- `all`: every caller reads every record and every private file (a local demo).
Writes are open in both, which is what anonymous mode means: every caller creates records in every
table and changes or deletes every record it can read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from app.errors import AppError, Forbidden, Unauthenticated
from app.tables import TableDef

TOKEN_HINT = "send 'Authorization: Bearer <jwt>'"
AUTH_HINT = "set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY"


class Who(Protocol):
    """The caller as the rules see it (app.uploads.Caller): a verified token's subject, or None."""

    @property
    def subject(self) -> str | None: ...


@dataclass(frozen=True)
class ReadScope:
    """The records one caller may read: every record of the `whole` tables, and the records of the
    `owned` tables whose owner is `subject`. Records of tables no YAML declares are nobody's."""

    whole: frozenset[str]
    owned: frozenset[str]
    subject: str | None
    rules: Mapping[str, str]  # every declared table -> its read rule
    anonymous_mode: bool

    def readable(self, table: str, owner: str | None) -> bool:
        return table in self.whole or (table in self.owned and owner is not None and owner == self.subject)

    def refusal(self, tables: Iterable[str]) -> AppError:
        """The answer to a query that could only return records of `tables`, none readable."""
        described = ", ".join(f"{t} (access.read: {self.rules[t]})" for t in sorted(tables))
        if self.anonymous_mode:
            return Forbidden(
                f"records of {described} are for signed-in callers, and this server runs without auth "
                f"(anonymous mode), so nobody reads them: {AUTH_HINT} (or ANONYMOUS_READS=all on a local demo)"
            )
        return Unauthenticated(f"records of {described} are for signed-in callers only: {TOKEN_HINT}")


class Access:
    def __init__(self, tables: Mapping[str, TableDef], *, auth: bool, anonymous_reads: str = "public") -> None:
        self.tables = tables
        self.auth = auth
        # Anonymous mode with ANONYMOUS_READS=all: one caller, who reads everything.
        self.open = not auth and anonymous_reads == "all"
        rules = {name: t.access.read for name, t in tables.items()}
        public = frozenset(name for name, rule in rules.items() if rule == "public")
        self._anonymous = ReadScope(frozenset(rules) if self.open else public, frozenset(), None, rules, not auth)
        self._signed_whole = frozenset(name for name, rule in rules.items() if rule != "owner")
        self._signed_owned = frozenset(name for name, rule in rules.items() if rule == "owner")
        self._rules = rules

    # -- reading -------------------------------------------------------------------------------
    def reads(self, caller: Who) -> ReadScope:
        if caller.subject is None:
            return self._anonymous
        return ReadScope(self._signed_whole, self._signed_owned, caller.subject, self._rules, False)

    def can_read(self, caller: Who, table: str, owner: str | None) -> bool:
        return self.reads(caller).readable(table, owner)

    def can_read_files(self, caller: Who, owner: str | None) -> bool:
        """Private files of a record the caller reads: its owner's (a record without owner: nobody's).
        Anonymous mode has no owners: everyone's with ANONYMOUS_READS=all, else nobody's."""
        if not self.auth:
            return self.open
        return caller.subject is not None and owner == caller.subject

    # -- writing -------------------------------------------------------------------------------
    def check_create(self, caller: Who, table: str) -> None:
        """Creating a record of `table`, or presigning a file for one. Either write rule lets any
        signed-in caller create (the record is its own); anonymous mode lets everyone."""
        if self.auth and caller.subject is None:
            raise Unauthenticated(
                f"creating records of {table[:100]} and presigning files for them needs a token: {TOKEN_HINT}"
            )

    def check_change(self, caller: Who, table: str, owner: str | None) -> None:
        """Changing or deleting a record the caller can read (check that first: what it cannot read
        must answer RECORD_NOT_FOUND, not FORBIDDEN)."""
        if not self.auth:
            return
        if caller.subject is None:
            raise Unauthenticated(f"changing records needs a token: {TOKEN_HINT}")
        tdef = self.tables.get(table)
        if tdef is None or tdef.access.write != "owner" or owner == caller.subject:
            return
        if owner is None:
            raise Forbidden(
                f"this record has no owner (it was saved without auth) and records of {table} are changed only "
                "by their owner (access.write: owner)"
            )
        raise Forbidden("this record belongs to another user")

    # -- start-up ------------------------------------------------------------------------------
    def summary(self) -> str:
        rules = "; ".join(
            f"{name} read: {t.access.read}, write: {t.access.write}" for name, t in sorted(self.tables.items())
        )
        return f"table access: {rules}"

    def notes(self) -> list[str]:
        """The rules that cannot hold in this mode, each with what happens instead (empty with auth on)."""
        if self.auth:
            return []
        notes: list[str] = []
        for name, tdef in sorted(self.tables.items()):
            private = [p.name for p in tdef.upload_properties() if p.upload_options().acl == "private"]
            files = f" and its private files ({', '.join(private)})" if private else ""
            rule = tdef.access.read
            if rule != "public":
                if self.open:
                    notes.append(
                        f"{tdef.source}: access.read: {rule} does not hold: ANONYMOUS_READS=all serves every "
                        f"record of {name}{files} to every caller"
                    )
                else:
                    notes.append(
                        f"{tdef.source}: access.read: {rule} cannot hold without auth: nobody reads the records "
                        f"of {name} (they are left out of every answer); {AUTH_HINT}"
                    )
            elif private:
                notes.append(
                    f"{tdef.source}: acl: private ({', '.join(private)}) cannot be kept to each record's owner "
                    "without auth: "
                    + (
                        "ANONYMOUS_READS=all signs these files for every caller"
                        if self.open
                        else "these files resolve to null for everyone but the caller saving them"
                    )
                )
        writes = ", ".join(f"{name}: {t.access.write}" for name, t in sorted(self.tables.items()))
        notes.append(
            f"access.write ({writes}) cannot hold without auth: every caller creates records in every table and "
            "changes or deletes every record it can read"
        )
        return notes
