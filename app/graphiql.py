"""GraphiQL as Strawberry serves it, opened on an example that walks through the upload flow.

Strawberry's page hard-codes its welcome text as `EXAMPLE_QUERY` and has no setting for a default
document, so we swap that one JavaScript constant. The page also loads React and GraphiQL from
unpkg.com, which a server behind a firewall (or a developer offline) cannot reach: we serve the very
same files from `/static/graphiql/` instead (vendored by tools/vendor_graphiql.py, checked against the
page's own Subresource Integrity hashes, which the browser checks again when it loads them).
"""

from __future__ import annotations

import json
import re
from functools import cache

from strawberry.http.ides import get_graphql_ide_html

EXAMPLE_DOCUMENT = """\
# Direct-to-S3 uploads. Run an operation with the ▶ button.
#
# 1. Ask for an upload form (image_presign_url), POST the file to upload_url with every field of
#    upload_url_payload in order and the file last, in a field named "file".
# 2. Save the uploaded object's URL (or its key) with record_create.
# 3. Read it back: versions appear once the worker has built them.

query Tables {
  tables { name properties { name type options } }
}

mutation Presign {
  image_presign_url(options: {
    model_property: {model_schema_name: "photos", property_name: "image"}
    content_type: "image/png", file_name: "cat.png"
  }) { upload_url upload_url_payload key url max_size content_types expires_at }
}

mutation Save {
  record_create(record: {table: "photos", properties: [
    {name: "caption", value: "A cat"}
    {name: "image", value: "<the key or Location from step 1>"}
  ]}) { id }
}

query Photos {
  records(filter: {table: {value: "photos"}}, sort: {created_at: {order: DESC}}, per_page: 5) {
    total_entries
    results {
      id properties
      property_upload(name: "image") {
        url width height versions
        version_details { name status url width height }
      }
    }
  }
}
"""

CDN = "https://unpkg.com/"
ASSETS_URL = "/static/graphiql/"

# "</" would end the <script> element early.
_SCRIPT_JSON = json.dumps(EXAMPLE_DOCUMENT).replace("</", "<\\/")
_EXAMPLE = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


@cache
def graphiql_html() -> str:
    html = get_graphql_ide_html("graphiql")
    replaced, count = _EXAMPLE.subn(lambda _: "const EXAMPLE_QUERY = " + _SCRIPT_JSON + ";", html, count=1)
    # A Strawberry upgrade that renames the constant should fail loudly, not silently drop the example.
    if count != 1:
        raise RuntimeError("strawberry's GraphiQL page no longer defines EXAMPLE_QUERY; update app/graphiql.py")
    # The integrity attributes stay: they name the same bytes, now served from our own origin.
    return replaced.replace(CDN, ASSETS_URL)
