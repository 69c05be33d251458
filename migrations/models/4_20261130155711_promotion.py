from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Promotion (app/uploads/promoting.py): a client only ever writes to a quarantine key; a save promotes
# the verified object to its permanent key. `etag` is the ETag the save verified, `promotion` where the
# bytes are. Files saved before this migration were written straight to what is now their permanent
# key and have nothing in quarantine: they are `settled`. The same SQL works on SQLite and PostgreSQL.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "uploads" ADD "promotion" VARCHAR(16);
        ALTER TABLE "uploads" ADD "etag" VARCHAR(255);
        CREATE INDEX IF NOT EXISTS "idx_uploads_promoti_f440ce" ON "uploads" ("promotion", "expires_at");
        UPDATE "uploads" SET "promotion" = 'settled' WHERE "status" IN ('attached', 'discarded', 'deleted');"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_uploads_promoti_f440ce";
        ALTER TABLE "uploads" DROP COLUMN "promotion";
        ALTER TABLE "uploads" DROP COLUMN "etag";"""


MODELS_STATE = (
    "eJztXG1T2zgQ/iuafDk6k3IhgcD1bjoTIG1zpUkH0l6nzI0rbCXRxZZcWwZyLf/9JL/E78"
    "YOcUh8/sIESSvJz652V6uVfjQ0qiDV3L+EDJ1a8hyxxivwo0GghviPhNomaEBd9+tEAYM3"
    "qt3c4O2kG7uhXQFvTGZAWfQ5gaqJeJGCTNnAOsOUCIoRQUCGqoqMX0ygG8jEUwIYnSMCnH"
    "6awJxBAyngZgHQLTIWoPdxwFtSGZkm2ONz+TU46r6+eLEvhlaozMfGZFrqKBbB3y0kMTpF"
    "bIYMPtb137wYEwXdI9P7V59LE4xUJQTtHC1ED3aFxBa6XXjGZ/HGbio+4UaSqWppJNBcX7"
    "AZJcv2/BNF6RQRJOanBIAmlqq6fPGKnNnyAmZYaDlNxS9Q0ARaqmCXoHam4Jc1JGk4GktX"
    "/bEkNWKs9CgCuLtFMiVCDDBhpo2ABu8lFZEpm/F/20dHD85APhJOMzHi597l2bve5R5v9U"
    "IMSbk0OaI2dKvaTt2D3Qlk0OnGht7H2ma1GYf7jUohS8bbJ4lAPhE0q4DuFfio+2tiA7Bn"
    "oHw++nR60QcfL/tng6vBaChG0Rbmd9WvFEW8ADMbg8t+78KG3IfYZFDTCyG8pCgP4E2KdQ"
    "n4Ct0xmQckWhTcQHl+Bw1FitXQNk1rG6/S2lq0BBI4tWETHyg+x9P+SKZGWHmFa7Jtgt0m"
    "pznoAV2FbEINbXQFHMpXXEVjlb3EBDiywzW4aok/HHqhonVksAW4haqFTMCLvrllGJnf4q"
    "aglBGeYAawEl80p3g6ICmrxmkfWTJcBqMLxhX97bUCUzGFl7+1253OcbvV6Z4cHR4fH520"
    "Tnhbe77xquOMNXY6eDsYjsM2QhQ8YhhsbAqY4SXBegzxM9uEsCnudnJY4m4n1RCLqrBR8N"
    "dJHOM/r0bDZIzDVBGgFSwz8BOo2CzNCDf+mFhEFlg6igETc18M+7qxedMhULLNhemaCw/u"
    "vQ+9L1FOnF2MTm3IqMmmht2L3cFphC30joNWROqXBCtJvatWtlPo1+h/+gCje4YMAlUpSb"
    "unwxwhq8HOBbZsIAGH5DiNYazPeQ3DGkrGO0wZVTQu6b73Ywf1ewbY48GH/tW49+FjSLuc"
    "98Z9UdMOu6hu6V43wpdlJ+CvwfgdEP+Cr6NhP6qElu3GXxtiTtBiVCL0ToJKEBOv2CsKsd"
    "nSlRXZHKas2bzVbOb7B7Qam8OUa2DzlqnSXedygd1scNWrFCoJ7uOpS/jm/SXiGzqBZZzr"
    "7jb1k93JznLcL3Wn+FDmbt8FK2G378OYvtsP8Ctf8NeNxiIFOKRNMDGoBrBpWggwCiBjUJ"
    "5piDCwRw2A7nVsLJp85/4Psl30JrDXPf+VEvdd9wCP7/Wv3ZiH58a5AQTJhpO3vRahL2bZ"
    "INnDIVMoLbtm6WmnN+H9adQT+GBlHWPYzhiDiCQXijF4BJUL9nfaOdz/TjvV+xdVYee/Du"
    "BsIoDj6q4CMMcIa7hzwF0HZkqOFfhWNS/CPkVZEhxTxw3bN/GmUjLMB90cKB9E9wo+yKIq"
    "jLHG/SJaKO7lU2xOS9hbml2FeIO5A1utIw5a7cM82PJm6ejalRER5nPGOjSY5OwZCsZxU8"
    "hr/HPjj4lk4n8TPI6sbUuQ6vHNy7oUSasCm5cA8py9KyAfoNoc8hXZOQZOMihhiDCXNsaB"
    "9BPTGOF2HJqK8SpzaKogWRUpglIQ7CJWIbWD6tmFUnx33qgI3G7zCu471+9PehKpYJMvA+"
    "wFF/NCnUJeQ58HeijPkK0SDFpIvmOEtRrJly4wQ/LctDTJnMH2UbcQ5HHS6oHezePRd9P9"
    "+W7Mm18avuKOZYx0Je9y2/B+FucSMTgtIuxe++pJeClqJXQqVyBK7hNVD+j1W8sJVlHhs4"
    "gQUfVQLidQXlhV1xr6qRp61Y1lvZ9cScTvsMI7j+GcKuDL9hWS8PbB4fHhSad7uBTsZUmW"
    "PMdld4bwdJaQspeKpk9Qw5ngrPlpPTFIs7Mgw5R1suvWpUHWqev5VhT/QGVE1IW72HeE7a"
    "5eyuS6k3G4EtsjpHWS8zav7lAWaH5HOpw8Wh3juAFvOpZiHmVGnBNvqME9EfIeLWxuDPjM"
    "IZGT/OjYnefd4kJaMnlTPNtxt8waDosf/3znWoWo4TMAw08XF42HPJn7t8gw+RTXkrr/2e"
    "lrB83YM6bwe6ClZvIHUH0soV8KcjNfYj/W+OSASwfoBEACPPPlpuL/DtgMgTtqzJEBNHor"
    "btczoCOicEjBy9dA+AAL8JMPg1WkJOf3lzROQpr/tQuGqHZy+etL/tui+ZsgPQG/aLywTl"
    "kukLL8nM8YbRW0ZeXC7UbKsqtMG5uBeu3nCnUssI4Fbiuc9VHM5o9ixPtQSdGZjEPGJUX1"
    "jl/Wr2+RYdCEi05jdJ8i0kuCKqCbFeTqfxmH4lux1NVljOtiNHzrNY/ms0YyJxlDms4SnI"
    "hUFRIkqUwu/dpUsoqgiSSLMJyQspcdwY2Q1hHcbY7g1m/OpC+p3TyfSWC7O/vomyOF4/ZZ"
    "d73qWzDZvldG4N6PuT0xcJ/7FZhtY0PeyH1IAEOR+7Pe1VnvvJ8VuC8zHt1DBpZnjYRAtF"
    "vTzIpAQ7/NY4HndEjX/ELr/yVy+0SPKT0me+ufPeTdYQVIKhg+LOfKlJ7wJHfGlSk96T3u"
    "KqB70Grlis22MkKzrZRbU3GEH72omeQTln9F83mc/rVdxizwftz6jdnDf/e2l0M="
)
