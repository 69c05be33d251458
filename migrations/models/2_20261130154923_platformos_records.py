from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# platformOS records (issue 13): soft delete (`deleted_at`), `external_id`, and timestamps set by the
# records use case instead of Tortoise's auto_now (platformOS lets a client give created_at and
# updated_at). Indexes serve `records` pages in their built-in sort orders; most are partial on live
# records (`deleted_at IS NULL`), which is what every query sees unless it filters on deleted_at.
# Per-property expression indexes are derived from the table YAML at start-up
# (app/record_indexes.py). The same statements run on SQLite and PostgreSQL, except the GIN index on
# `properties` (jsonb containment: array_contains) and the TIMESTAMPTZ type, PostgreSQL only.

_INDEXES = """
        DROP INDEX IF EXISTS "idx_records_table_311611";
        DROP INDEX IF EXISTS "idx_records_owner_32e0bb";
        CREATE INDEX IF NOT EXISTS "idx_records_owner" ON "records" ("owner");
        CREATE INDEX IF NOT EXISTS "idx_records_table_external" ON "records" ("table", "external_id");
        CREATE INDEX IF NOT EXISTS "idx_records_deleted" ON "records" ("deleted_at") WHERE "deleted_at" IS NOT NULL;
        CREATE INDEX IF NOT EXISTS "idx_records_live_created" ON "records" ("created_at", "id") WHERE "deleted_at" IS NULL;
        CREATE INDEX IF NOT EXISTS "idx_records_live_table_created" ON "records" ("table", "created_at", "id")
            WHERE "deleted_at" IS NULL;
        CREATE INDEX IF NOT EXISTS "idx_records_live_table_updated" ON "records" ("table", "updated_at", "id")
            WHERE "deleted_at" IS NULL;
        CREATE INDEX IF NOT EXISTS "idx_records_live_table_id" ON "records" ("table", "id") WHERE "deleted_at" IS NULL;
        CREATE INDEX IF NOT EXISTS "idx_records_live_table_owner" ON "records" ("table", "owner", "created_at", "id")
            WHERE "deleted_at" IS NULL;"""

_DROP_INDEXES = """
        DROP INDEX IF EXISTS "idx_records_owner";
        DROP INDEX IF EXISTS "idx_records_table_external";
        DROP INDEX IF EXISTS "idx_records_deleted";
        DROP INDEX IF EXISTS "idx_records_live_created";
        DROP INDEX IF EXISTS "idx_records_live_table_created";
        DROP INDEX IF EXISTS "idx_records_live_table_updated";
        DROP INDEX IF EXISTS "idx_records_live_table_id";
        DROP INDEX IF EXISTS "idx_records_live_table_owner";
        CREATE INDEX IF NOT EXISTS "idx_records_owner_32e0bb" ON "records" ("owner");
        CREATE INDEX IF NOT EXISTS "idx_records_table_311611" ON "records" ("table");"""

SQL = {
    "sqlite": """
        ALTER TABLE "records" ADD "external_id" VARCHAR(255);
        ALTER TABLE "records" ADD "deleted_at" TIMESTAMP;"""
    + _INDEXES,
    "postgres": """
        ALTER TABLE "records" ADD "external_id" VARCHAR(255);
        ALTER TABLE "records" ADD "deleted_at" TIMESTAMPTZ;
        CREATE INDEX IF NOT EXISTS "idx_records_properties" ON "records" USING GIN ("properties" jsonb_path_ops);"""
    + _INDEXES,
}

DOWN = {
    "sqlite": _DROP_INDEXES
    + """
        ALTER TABLE "records" DROP COLUMN "external_id";
        ALTER TABLE "records" DROP COLUMN "deleted_at";""",
    "postgres": _DROP_INDEXES
    + """
        DROP INDEX IF EXISTS "idx_records_properties";
        ALTER TABLE "records" DROP COLUMN "external_id";
        ALTER TABLE "records" DROP COLUMN "deleted_at";""",
}


def _dialect(db: BaseDBAsyncClient) -> str:
    return "sqlite" if db.capabilities.dialect == "sqlite" else "postgres"


async def upgrade(db: BaseDBAsyncClient) -> str:
    return SQL[_dialect(db)]


async def downgrade(db: BaseDBAsyncClient) -> str:
    return DOWN[_dialect(db)]


MODELS_STATE = (
    "eJztXG1T2zgQ/iuafKIzlAkJBK5305lAaY8rTW4g7XXK3LjCVhJdbMmVZSDX8t9Pku343d"
    "hpAonPX5iw0lrKs6v16tEq31sWNZDp7F0inTKj9Qp8bxFoIfEh0bILWtC2Q7kUcHhjqq5M"
    "9VEyeONwBnUuxGNoOkiIDOToDNscUyI794FtQj6mzBpeAU/zFbhxsclfYgJ0aroWcUQfV/"
    "6BQmQzaiPG5+AWmi5ygBB99WUYOV/35LAG1cW4mEzWNoJL8DcXaZxOEJ8iJsa5/luIMTHQ"
    "PXKCf+2ZNsbIjCOJFXxKrvG5rWQneHJO+FvVV87/RvPmFfa353xKyUIBEy6lE0QQgxzJET"
    "hzJb7ENU3fEgHk3mTDLt4sIzoGGkPXlFaS2t4EQllL0wbDkXZ1NtK0VsqCgUYEcl+kUyKt"
    "L6bqKAAmcgovf+l0ut2jTrvbOz48ODo6PG4fi75qvummowdvMiFa3qMUZufvzgcjOSEqXM"
    "xzPSl4UDqQQ09LGSNE3/PSlAFOp5Blw79QSFhAfLWkBQK8i0wQCEIbhAvjKYxgwXvNRGTC"
    "p+LfXrcA30/9y9Pf+5c7ve6LOMgDv6WjmiTcIbzhOklj/MfVcJCNcVwrAbSBdQ5+ABM7KZ"
    "dfFeCt38Yu0SWWXmDAxNmTw75urckMBbBLlOSTLcf5Zkbh3vnQ/5y0xOnF8ERBRh0+Yeop"
    "6gEnCbPQOwFaFa9fKCzl9X5Y2Uyn7xwelvB60SvX7VVbHGB0zxEj0NSyons+zAm1BuxSYO"
    "sMSTg0yNNYvxEtHFsoG++4ZjLQ+Kp7wYctjO8FYI/OP5xdjfof/oxFlzf90Zls6SjpPCHd"
    "6SXssngI+Ot89DuQ/4Ivw8FZMggt+o2+tOScoMupRuidBo0oJoE4EMXM7NrGkmaOazZm3m"
    "gzi/0DWs7Mcc0VmHnDQum2W1lugcazSBouBTdQn91BZmixluiqNyk0MtLHE1/x7ftLJDZ0"
    "Esu01f1t6kf1kK21eCj1p6igpB2ah2W6yepYSQkkcKK+khxbjhQHK2O3H8KYv9uP2Ovx3f"
    "6QILG9Rg6eEGQAT3UXjBm1AHYcFwFOAeQc6lMLEQ52KAPo3sZsvit27v8glaLvArXuxacX"
    "6c3+OgZ4fK9/7XMeQRrnEwiaglP0vRapHOSuAkkNhxwZtFTLItPO7tLQCJtJI9AZIpVohE"
    "BhNTTC85ogluJ3OyUy/G4nN8GXTfH8vuFonoKj8cNTBZhTig3cJeBuuJc10wHhi7MswqHG"
    "ujw4FY5bKv0IprJmmPd7JVDeT24HQpBlUxxjS6Q+tBK1FWo8XZRQu5ZthXiG5lXw9bvXL0"
    "bstzsHZbAV3fLRVY0JFxZzxjZkXPO2BRWp2hz1Bv/S+GOiOfjfjIyjaNsS1Xp887KqQNKu"
    "weYlgrww7xLIR7SeDvma7BwjhxWUcES4r5uyQP6haEpxM85F5Xi1ORc1kG5ChgwtCnaVt0"
    "LuA+r3XlhL7i46VYHb717Dfefq88nAIw3siGWAA8K8LNQ56g30ZaCH+hSpkMBoJf9OKTZh"
    "pFxFwBTpM8e1NGcKO4e9SpCnVesHeq9MRt/Lz+d7qWx+8eKrnlimVJfKLjcN72dJLsfYRJ"
    "Vp3JhS/Xx9PRxjZS9vnPtnnXvZnLxJxZdy8TtsiIencM518EX/Gnl4Z//g6OC42ztYOPZC"
    "UuTPad+dIjyZZhQ05aIZKjRwpuGMVESkIC2uEYtrNqWAG1ck1hT2lltR4gsaQ2LO/cW+JW"
    "b341Kh1b16rKXMnlBtSkA3eXXHauTKJ9Lx0rr6vByfIJtOFeAmjZG2xFvKRCZC3qO5ssa5"
    "mDkkelYenboRul1WyCu1FWIG7xYFl3H3E1/fKzqXLWIGYPDx4qL1UKau+RYxR0xxJYXNn7"
    "xnbeFr7BkLnAPQcuucI6g+Vu6sRa1ZruwZW2JywNcDdAwgAcHryy9U/hXwKQJ3lM0QAxa9"
    "lXePObARMQSk4OVrIHOAOfghhsEmMrKrn9c0TkYR9LUPhmz2Kp2bK9CbEvl3QX7tclW+sK"
    "n2rFDt+YRVXJsN7brKiLaj2tMPpq2ngXrlB5gNF9hwgZsKZ3MU8wznjJRZWexMwSHjQqN+"
    "xy+rj7eIMZpxR2SE7nNceqFQB3SLSK6zz6MYv5Wq+ltwXBfDwbuge7IUMFF0xjmybJ6RRO"
    "SGkKhKbcqQVxaSTQQdpLmE44xqp2IGN6HaMLibzOA2v8iRv6S283wmw+z+7JO/yFCZty+6"
    "JtNcICjOvQqI+5Bz+0nivvRvZGyaGcoy9zEHjDH3p/2r0/6bsyLifp18dB8xrE9bGUS037"
    "JbxEDDsM9jxHM+pCv+/cr/C3P7kxlTPid7G549lN1hRVRqSB+u57aJWFQVEPa71xDd/Xa7"
    "FDfbLqBm2zkXTtIIP3rHLSsnXP/ttudJ+ld2j63Cr2ut/mX28B+qr7It"
)
