from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# The per-caller pending cap (app/limits.py) filters on owner, status and expires_at at every presign.
# With only single-column owner and (status, expires_at) indexes SQLite chose the latter and scanned
# every caller's pending uploads. The same SQL works on SQLite and PostgreSQL (generated against both).


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_uploads_owner_1f4aff";
        CREATE INDEX IF NOT EXISTS "idx_uploads_owner_444e84" ON "uploads" ("owner", "status", "expires_at");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_uploads_owner_444e84";
        CREATE INDEX IF NOT EXISTS "idx_uploads_owner_1f4aff" ON "uploads" ("owner");"""


MODELS_STATE = (
    "eJztnOtT2zgQwP8VTT7RGcqEBAL3mM4ESluuNLmBtNcpc+MRtpLosCVXVgq5lv/9JMXvF3"
    "aah+PzN1hpbfm3a3l3vc73lkUNZDoH10inzGj9Cr63CLSQ+CM2sg9a0LYDuRRweGeqqUzN"
    "UTJ453AGdS7EY2g6SIgM5OgM2xxTIqRkZppSSHUxEZNJIJoR/HWGNE4niE8REwO3fwsxJg"
    "Z6RI73r32vjTEyo2vFaoFKrvG5rWRneHJJ+Bs1V57wTtOpObNIMN+e8yklvgImXEoniCAG"
    "OZJn4Gwmr0Au0L1W76IWiw2mLFYZ0jHQGM5MHrriOy2QtTRtMBxpNxcjTWuVYKRTIvmKpT"
    "oKwEQu4eUvnU63e9Jpd3unx0cnJ8en7VMxV603OXTytFhMQGtxKMXs8u3lYCQXRIURF8aV"
    "gielAzlcaCljBPQXfpAwwPkUsnT8vkLMAuLS4hbweOeZwBNsyQYWfNRMRCZ8Kv7tdXPwfu"
    "pfn7/rX+/1ui+ijAfuSEcNSdoBXZtRGzGOkZNE/MfNcJCOOKoV42xgnYMfwMROwuOX4x3c"
    "6j7c38czokuW4G6GTY6JcyBP+6q1JjPkYJeU5JEtx/lqhnHvfeh/jlvi/Gp4ppBRh0+YOo"
    "o6wFnMLPRBQCvj9L7CUk7venQlfb5zfFzA6cWsTK9XY1G+OkOShgZ5EvJrMcKxhdJBRzXj"
    "ru+qHnh/rOsGWCd9cYHGkJhz1+o58EeXHy5uRv0Pf0b8/3V/dCFHOko6j0n3ejE7+QcBf1"
    "2O3gH5L/gyHFzEbxN/3uhLS64JzjjVCH3QoBFyUE/qUYtYfWYbS1o9qtlYvSpW9xiFzK5W"
    "L2O58X0onpCCO6jfP0BmaJGRsHuYFBopD8IzV/HN+2tkQoU26QVuRPtRHWQle+5GHeDJc3"
    "lPGkZJOzSLZXLI6lhxCSRwoi5JnlueKQorJTEIMGYnBiF7PZsYtIYEAVs4FZ4QZICF6j4Y"
    "M2oB7DgzBDgFkHOoTy1EONijDKBHG7P5PmDoH6SCjX0g1oDkXy8OWjGqaznB80nLrZseaW"
    "7SsQjM5prCKebeiggA8pmCpE6HHLmJqRE/Zkif0uRD1cyH6D0ipfIhT2E1+dB2TRAJDbud"
    "ApFht5MZGMqhaFxYvWRzs1HAZrJNd3sqgTmh2OAugLtyWeQW6a4ljQwenEUJBxobq061VP"
    "jhLWXNmA97BSgfxrOBALIcijK2ROhDUyKObMaBxuZ2CZW07CriezQvw9edXr894rDdOSrC"
    "VkzLpqsGYy4s1oxtyLi2SAu0tAg6x5/T1Rv+hfljojn435SIIy9tCWs9n7ysaiNp1yB5CZ"
    "EX5l2CfEhrc+RrkjmGityUcES4q5uwQPbrnYRiNd7wyPPV5g2PgXQTMmRoYdhlngqZB6jf"
    "c2EtsbuYVAa3O72Geefq40nPIw3siNsAewXzoqgz1Bv0RdBDfYrUlsBoKf9OKDbbSLE3yV"
    "Ok3zszS3OmsHPcK4U8qVo/6L0iEX0vO57vJaJ5/8FXPrBMqC4VXVaN91aCyzE2UekybkSp"
    "fr6+nhpjaS9vnPtnnXvZmLwJxZdy8QdsiIMnOGc6uD+/Rh7eOTw6OTrt9o58x/Ylef6c9N"
    "0pwpNpSoNTJs1AocGZxBnqiEggze8Zi2rWsGdsd3vEkq2BTUNo9h21m62BRRpCF/1YS5k9"
    "proCu1dsI90RMxe6uyM9csUD6WhrXX0ejhuIphMNuHFjJC3xhjIRiZD3aK6scSlWDomeFk"
    "cnPh7bLStktdoKMYMPfsNl1P3E5aveUAVArAAMPl5dtZ6K9DV/Q8wRS1xJY/OnxbF28DG2"
    "xQZnD1pmn3OI6nPtzlrYmsXanrElFgdcPUDHABLgPb7cRuXfAJ8i8EDZPWLAot+QAzAHNi"
    "KGQApevgIyBpiDH+I02ERGevfzms6T0gR968KQw4tO5+Zbzqrs/Psgu3e5bL2w6fYs0e25"
    "wS6uaqNdVxvRbnR7uptpazOoV/4Cs6kFNrXAquJsXsVs4T0jZVZadSbnJaOvUb/XL6vfbx"
    "FjNOUbkRF6zHBpX6EOdPOKXBefR5H6VqLrz69xXQ0Hb73p8VbAWNMZ58iyeUoQkbmFhFVq"
    "04a8si3ZRNBB2oxwnNLtlF/Bjak2FdwqV3Cbn27IvqV28/1Mitnd1cd/kaF03T7vM5nmA4"
    "L82CuncB/U3H6ycF/4NzKqZoailfuIA0Yq9+f9m/P+64u8wv0669F9xLA+baUUot2R/bwK"
    "NAzmVOaH+P4vldufjJiya7LfgncPRTOskEoNy4fr+dpE3FQlCLvTa0j3sN0uVJtt55Rm2x"
    "kfnCQJP/uNW1pMuP6v27YT9K/sO7YSv661+ofZ039Y5nMq"
)
