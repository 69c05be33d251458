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
    "eJztnG1z2jgQgP+Khk/pTJohkJDcy3SGpGmbawo3Ce11mrnxKLYAHbZEZbkJ1+a/nyT8/h"
    "abYgI+fwNJa8vPruXd1drfWxY1kGkfXCOdMqP1K/jeItBC4kesZx+04HwetMsGDu9MNZSp"
    "MaoN3tmcQZ2L5jE0bSSaDGTrDM85pkS0Esc0ZSPVxUBMJkGTQ/BXB2mcThCfIiY6bv8WzZ"
    "gY6AHZ3t/5TBtjZEbnitUEVbvGF3PVdoYnl4S/UWPlCe80nZqORYLx8wWfUuILYMJl6wQR"
    "xCBH8gycOfIK5ATda/UuajnZYMhyliEZA42hY/LQFd9pQVtL0wbDkXZzMdK0VglGOiWSr5"
    "iqrQBM5BRe/tLpdLsnnXa3d3p8dHJyfNo+FWPVfJNdJ4/LyQS0lodSzC7fXg5GckJUKHGp"
    "XNnwqGQgh0sppYyA/tIOEgo4n0KWjt8XiGlAXFpcAx7vPBV4Dc+kAws+aCYiEz4Vf3vdHL"
    "yf+tfn7/rXe73uiyjjgdvTUV2SdkB3zugcMY6RnUT8x81wkI44KhXjbGCdgx/AxHbC4lfj"
    "HdzqPtzfxw7RJUtw52CTY2IfyNO+alWkhhzskpI8smXbX80w7r0P/c9xTZxfDc8UMmrzCV"
    "NHUQc4i6mF3gtoZYzeF1jJ6F2L3kqb7xwfFzB6MSrT6lVflK/OkKShQZ6E/Fr0cGyhdNBR"
    "ybjpu6IH3o+qboAq6YsLNIbEXLhaz4E/uvxwcTPqf/gzYv+v+6ML2dNRrYtY614vpif/IO"
    "Cvy9E7IP+CL8PBRfw28ceNvrTknKDDqUbovQaNkIF6rR61iNadubGi1qOSjda3Reseo5Da"
    "1eylLzeehfwJ2XAH9dk9ZIYW6Qmbh0mhkfIgPHMF37y/RiZUaJNW4Hq0H9VB1rLmbtQAHj"
    "2T91rDKGmHZrFMdlkdK94CCZyoS5LnlmeKwkoJDAKM2YFBSF9PBgatIUFgLowKTwgywFJ0"
    "H4wZtQC2bQcBTgHkHOpTCxEO9igD6GGO2WIfMPQPUs7GPhBzQPLXi4NWjGolJ3g6aLl1wy"
    "PNDTqWjtlCUzjF2FvhAUDuKEjqdMiWi5jq8X2G7CHieBb1DD7c2QRL2xks0RkipYIlT2A9"
    "wdLzqiDiN3Y7BdzGbifTa5RdUadx+yLRzboImwlF3bWrBOaEYIO7AO6tCzGfkW4lMWbwVC"
    "1KOJDYWOqqpXwTbyoVYz7sFaB8GA8VAsiyK8rYEn4RTfE4shkHEptbJVREs6uIZ2hRhq87"
    "vH5rxGG7c1SErRiWTVd1xkxYzBnPIePaMmbQ0jzoHHtOF2/4F+aPiWbjf1M8jrywJSz1dP"
    "CyroWkXYPgJUReqHcF8iGpzZGvSeQYyoBTwhHhrmxCA9l7PwnB7dj+keerzfaPgXQTMmRo"
    "YdhlngqZB6jfc6ES310MKoPbHV7DuHP9/qRnkQa2xW2AveRiUdQZ4g36IuihPkVqSWC0lH"
    "0nBJtlpNg28xTpM9uxNHsKO8e9UsiTovWD3ivi0fey/flewpv3H3zlHcuE6Ere5bbxfhbn"
    "EnE4KWPs3vj6WXgly0pkV65EljwQqh/o9T8tx9hEpfciIkL1o1xNorz0Ut2s0D+7Qq8aWD"
    "bx5Eomfo8NcfAE50wD98fXyMI7h0cnR6fd3pFv2H5Lnj0nbXeK8GSaUsKXSTMQaHCmOGtB"
    "WU8CaX5VZFSyhlWRu1sFmSx+bUqes++o3Sx+LVLyvKw4XEntMdE16H3LFtIdUXOhuztSBV"
    "rckY4Wj9bn4bgBbzpRYh5XRlITbygTngh5jxZKG5di5pDoaX504vXI3dJCVjG5aGbw3q8a"
    "jpqfuHxV/awAiBmAwcerq9Zjkcr9b4jZYoprKd3/tDzWDj7GnrGE34OWWckfovpUQb8W1m"
    "axwn5sickBVw7QMYAEeI8vtxT/N8CnCNxTNkMMWPQbsgHmYI6IIZCCl6+A9AEW4Ic4DTaR"
    "kV7fX9F5Usr8b10YsntZy9+8rbwtK/8+yC7AL5svbEqWS5Qsb7AUcbvRVlULtxsly+5i2t"
    "oM6rXvKzS5wCYXuK04m62YzW/FjCmz0rIzOZuMvkT9tl/Wv94ixmjKi04j9JBh0r5AHejm"
    "JbkuPo8i+a1E6aqf47oaDt56w+P1rLHKSc6RNecpTkTmEhIWqU0t/dqWZBNBG2kO4TilZC"
    "8/gxsTbTK425zBbT5Okn1L7eb+TIra3dnHvzlSOm+f965X8xZMvu+Vk7gPcm4/mbgv/BWY"
    "bVND0cx9xAAjmfvz/s15//VFXuK+ynx0HzGsT1spiWi3Zz8vAw2DMVvzqcn/S+b2Jz2m7J"
    "zst2DvoWiEFRKpYfqwmlemxE1VgrA7vIZ0D9vtQrnZdk5qtp3x1lSS8JMvaqb5hNW/ovk8"
    "Tv/aXsYs8f249T/MHv8Dca9eYw=="
)
